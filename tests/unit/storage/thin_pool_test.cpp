#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <random>
#include <thread>
#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/try.h"
#include "io_test_support.h"
#include "pool_test_support.h"
#include "storage/pool/file_member_disk.h"

namespace kasou::storage {
namespace {

using test::FaultDisks;
using test::pattern;

struct ThinPoolTest : ::testing::Test {
    FaultDisks disks;
    std::shared_ptr<ThinPool> pool;

    void SetUp() override
    {
        pool = MUST(ThinPool::create("tank", SegmentKind::Linear, 0, disks.make(2, 16 * MiB), false));
    }

    std::shared_ptr<BlockDevice> make_volume(std::string const& name, u64 size)
    {
        MUST(pool->create_volume(name, size));
        return MUST(pool->open_volume(name));
    }

    std::vector<u8> read(BlockDevice& device, u64 offset, u64 length)
    {
        std::vector<u8> data(length);
        MUST(device.read(offset, data));
        return data;
    }

    void expect_clean()
    {
        auto faults = pool->check();
        EXPECT_TRUE(faults.empty()) << test::describe(faults);
    }

    // What the disks would hold after a power cut that kept no unflushed write.
    std::vector<std::unique_ptr<MemberDisk>> durable_images()
    {
        std::vector<std::unique_ptr<MemberDisk>> images;
        for (auto* disk : disks.disks)
            images.push_back(std::make_unique<FaultMemberDisk>(disk->name(), disk->durable_image()));
        return images;
    }

    // Reopens the pool from what its disks hold (as after a clean shutdown).
    void reopen()
    {
        MUST(pool->close());
        std::vector<std::unique_ptr<MemberDisk>> owned;
        FaultDisks copies;
        for (auto* disk : disks.disks) {
            std::vector<u8> image(disk->size());
            MUST(disk->read(0, image));
            auto copy = std::make_unique<FaultMemberDisk>(disk->name(), std::move(image));
            copies.disks.push_back(copy.get());
            owned.push_back(std::move(copy));
        }
        pool.reset();
        disks = copies;
        pool = MUST(ThinPool::open(std::move(owned)));
    }
};

TEST_F(ThinPoolTest, UnwrittenRangesReadAsZeroesAndAllocateNothing)
{
    auto volume = make_volume("v", 8 * MiB);
    EXPECT_EQ(volume->size(), 8 * MiB);
    EXPECT_EQ(read(*volume, 0, 1 * MiB), std::vector<u8>(1 * MiB, 0));
    EXPECT_EQ(pool->usage().data_used, 0u);
    auto extents = MUST(volume->block_status(0, 8 * MiB));
    ASSERT_EQ(extents.size(), 1u);
    EXPECT_FALSE(extents[0].allocated);
    EXPECT_TRUE(extents[0].zero);
}

TEST_F(ThinPoolTest, WritesReadBackAndAllocateWholeChunks)
{
    auto volume = make_volume("v", 8 * MiB);
    auto data = pattern(10000, 1);
    ASSERT_OK(volume->write(CHUNK_SIZE - 3000, data, false));
    EXPECT_EQ(read(*volume, CHUNK_SIZE - 3000, data.size()), data);
    EXPECT_EQ(read(*volume, 0, CHUNK_SIZE - 3000), std::vector<u8>(CHUNK_SIZE - 3000, 0));
    EXPECT_EQ(pool->usage().data_used, 2 * CHUNK_SIZE);
    auto extents = MUST(volume->block_status(0, 8 * MiB));
    ASSERT_EQ(extents.size(), 2u);
    EXPECT_TRUE(extents[0].allocated);
    EXPECT_EQ(extents[0].length, 2 * CHUNK_SIZE);
    EXPECT_FALSE(extents[1].allocated);
    expect_clean();
}

TEST_F(ThinPoolTest, AccessPastTheEndFailsWithoutEffect)
{
    auto volume = make_volume("v", 1 * MiB);
    auto data = pattern(4096, 2);
    auto result = volume->write(1 * MiB - 2048, data, false);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), EINVAL);
    EXPECT_NE(result.error().to_string().find("past the end"), std::string::npos);
    EXPECT_EQ(pool->usage().data_used, 0u);
}

TEST_F(ThinPoolTest, SnapshotKeepsItsContentWhileTheOriginChanges)
{
    auto volume = make_volume("v", 4 * MiB);
    auto before = pattern(4 * MiB, 3);
    ASSERT_OK(volume->write(0, before, false));
    u64 used = pool->usage().data_used;
    ASSERT_OK(pool->snapshot("v", "snap", false));
    EXPECT_EQ(pool->usage().data_used, used) << "a snapshot copies no data";
    auto snapshot = MUST(pool->open_volume("snap"));
    EXPECT_TRUE(snapshot->read_only());
    auto after = pattern(4096, 4);
    ASSERT_OK(volume->write(CHUNK_SIZE + 100, after, false));
    EXPECT_EQ(read(*snapshot, 0, 4 * MiB), before);
    EXPECT_EQ(read(*volume, CHUNK_SIZE + 100, 4096), after);
    EXPECT_EQ(pool->usage().data_used, used + CHUNK_SIZE) << "only the written chunk is copied";
    auto denied = snapshot->write(0, after, false);
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code(), EROFS);
    EXPECT_EQ(denied.error().kind(), ErrorKind::PermissionDenied);
    expect_clean();
}

TEST_F(ThinPoolTest, ClonesAreWritableAndIndependent)
{
    auto volume = make_volume("v", 2 * MiB);
    auto base = pattern(2 * MiB, 5);
    ASSERT_OK(volume->write(0, base, false));
    ASSERT_OK(pool->snapshot("v", "snap", false));
    ASSERT_OK(pool->snapshot("snap", "clone", true));
    auto clone = MUST(pool->open_volume("clone"));
    EXPECT_FALSE(clone->read_only());
    auto mine = pattern(8192, 6);
    ASSERT_OK(clone->write(0, mine, false));
    auto theirs = pattern(8192, 7);
    ASSERT_OK(volume->write(0, theirs, false));
    EXPECT_EQ(read(*clone, 0, 8192), mine);
    EXPECT_EQ(read(*volume, 0, 8192), theirs);
    auto snapshot = MUST(pool->open_volume("snap"));
    EXPECT_EQ(read(*snapshot, 0, 2 * MiB), base);
    expect_clean();
}

TEST_F(ThinPoolTest, SnapshotTakesNoTimeProportionalToData)
{
    auto volume = make_volume("v", 24 * MiB);
    auto data = pattern(1 * MiB, 8);
    for (u64 offset = 0; offset < 24 * MiB; offset += data.size())
        ASSERT_OK(volume->write(offset, data, false));
    u64 nodes_before = pool->usage().metadata_used;
    ASSERT_OK(pool->snapshot("v", "s1", false));
    // The snapshot adds no tree node: only the volume table grows.
    EXPECT_LE(pool->usage().metadata_used, nodes_before + BLOCK_SIZE);
    expect_clean();
}

TEST_F(ThinPoolTest, DiscardReleasesChunksAndReadsZeroes)
{
    auto volume = make_volume("v", 4 * MiB);
    ASSERT_OK(volume->write(0, pattern(4 * MiB, 9), false));
    EXPECT_EQ(pool->usage().data_used, 4 * MiB);
    ASSERT_OK(volume->discard(CHUNK_SIZE / 2, 3 * CHUNK_SIZE));
    EXPECT_EQ(read(*volume, CHUNK_SIZE / 2, 3 * CHUNK_SIZE), std::vector<u8>(3 * CHUNK_SIZE, 0));
    EXPECT_EQ(pool->usage().data_used, 4 * MiB - 2 * CHUNK_SIZE) << "the two whole chunks are released";
    ASSERT_OK(volume->flush());
    expect_clean();
}

TEST_F(ThinPoolTest, WriteZeroesDoesNotAllocate)
{
    auto volume = make_volume("v", 4 * MiB);
    ASSERT_OK(volume->write_zeroes(0, 4 * MiB, false));
    EXPECT_EQ(pool->usage().data_used, 0u);
    auto data = pattern(CHUNK_SIZE * 2, 10);
    ASSERT_OK(volume->write(0, data, false));
    ASSERT_OK(volume->write_zeroes(100, CHUNK_SIZE * 3, false));
    EXPECT_EQ(read(*volume, 0, 100), std::vector<u8>(data.begin(), data.begin() + 100));
    EXPECT_EQ(read(*volume, 100, CHUNK_SIZE * 3), std::vector<u8>(CHUNK_SIZE * 3, 0));
    EXPECT_EQ(pool->usage().data_used, 2 * CHUNK_SIZE) << "no chunk allocated, none released without may_unmap";
    ASSERT_OK(volume->write_zeroes(0, 4 * MiB, true));
    EXPECT_EQ(pool->usage().data_used, 0u);
    expect_clean();
}

TEST_F(ThinPoolTest, ResizeGrowsAndShrinksDroppingTheTail)
{
    auto volume = make_volume("v", 1 * MiB);
    ASSERT_OK(volume->write(0, pattern(1 * MiB, 11), false));
    ASSERT_OK(pool->resize("v", 300 * KiB));
    EXPECT_EQ(volume->size(), 300 * KiB);
    EXPECT_EQ(pool->usage().data_used, 5 * CHUNK_SIZE);
    ASSERT_OK(pool->resize("v", 2 * MiB));
    EXPECT_EQ(read(*volume, 300 * KiB, 2 * MiB - 300 * KiB), std::vector<u8>(2 * MiB - 300 * KiB, 0)) << "old data must not reappear";
    auto written = pattern(1 * MiB, 11);
    written.resize(300 * KiB);
    EXPECT_EQ(read(*volume, 0, 300 * KiB), written);
    expect_clean();
}

TEST_F(ThinPoolTest, RemovedVolumesAreReleasedInTheBackground)
{
    auto volume = make_volume("v", 8 * MiB);
    ASSERT_OK(volume->write(0, pattern(8 * MiB, 12), false));
    ASSERT_OK(pool->snapshot("v", "keep", false));
    auto other = make_volume("w", 4 * MiB);
    ASSERT_OK(other->write(0, pattern(4 * MiB, 13), false));
    volume.reset();
    other.reset();
    ASSERT_OK(pool->remove("v"));
    ASSERT_OK(pool->remove("w"));
    EXPECT_FALSE(pool->volume_info("w"));
    pool->start_background();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pool->usage().data_used != 8 * MiB && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(pool->usage().data_used, 8 * MiB) << "w's chunks are freed, v's stay with the snapshot";
    auto snapshot = MUST(pool->open_volume("keep"));
    EXPECT_EQ(read(*snapshot, 0, 8 * MiB), pattern(8 * MiB, 12));
    ASSERT_OK(pool->commit());
    expect_clean();
}

TEST_F(ThinPoolTest, OpenVolumesCannotBeRemoved)
{
    auto volume = make_volume("v", 1 * MiB);
    auto result = pool->remove("v");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("in use"), std::string::npos);
}

TEST_F(ThinPoolTest, NamesAreCheckedAndUnique)
{
    ASSERT_OK(pool->create_volume("v", 1 * MiB));
    EXPECT_FALSE(pool->create_volume("v", 1 * MiB));
    EXPECT_FALSE(pool->create_volume("a/b", 1 * MiB));
    EXPECT_FALSE(pool->create_volume("", 1 * MiB));
    EXPECT_FALSE(pool->create_volume("x", 1000));
    EXPECT_FALSE(pool->snapshot("missing", "s", false));
}

TEST_F(ThinPoolTest, EverythingSurvivesAReopen)
{
    auto volume = make_volume("v", 4 * MiB);
    auto data = pattern(3 * MiB, 14);
    ASSERT_OK(volume->write(12345, data, false));
    ASSERT_OK(pool->snapshot("v", "s", false));
    ASSERT_OK(volume->write(0, pattern(4096, 15), false));
    volume.reset();
    reopen();
    EXPECT_EQ(pool->name(), "tank");
    auto names = pool->volumes();
    ASSERT_EQ(names.size(), 2u);
    auto snapshot = MUST(pool->open_volume("s"));
    EXPECT_EQ(read(*snapshot, 12345, data.size()), data);
    auto reopened = MUST(pool->open_volume("v"));
    EXPECT_EQ(read(*reopened, 0, 4096), pattern(4096, 15));
    expect_clean();
}

TEST_F(ThinPoolTest, FullPoolFailsWithEnospcAndGrowsByAddingADisk)
{
    auto volume = make_volume("big", 64 * MiB);
    auto data = pattern(1 * MiB, 16);
    u64 offset = 0;
    ErrorOr<void> result;
    for (; offset < 64 * MiB; offset += data.size()) {
        result = volume->write(offset, data, false);
        if (!result)
            break;
    }
    ASSERT_FALSE(result) << "32 MiB of disks cannot hold 64 MiB";
    EXPECT_EQ(result.error().code(), ENOSPC);
    EXPECT_EQ(result.error().kind(), ErrorKind::NoSpace);
    ASSERT_OK(volume->flush());
    expect_clean();
    // Everything acknowledged is still there.
    for (u64 done = 0; done + data.size() <= offset; done += data.size())
        ASSERT_EQ(read(*volume, done, data.size()), data);
    ASSERT_OK(pool->add_members(SegmentKind::Linear, 0, disks.make(1, 64 * MiB), false));
    for (; offset < 64 * MiB; offset += data.size())
        ASSERT_OK(volume->write(offset, data, false));
    ASSERT_OK(volume->flush());
    EXPECT_EQ(read(*volume, 63 * MiB, data.size()), data);
    expect_clean();
    volume.reset();
    reopen();
    EXPECT_EQ(pool->layout().members().size(), 3u);
    expect_clean();
}

TEST_F(ThinPoolTest, SnapshotsInAFullPoolStopWithEnospcAndLeaveNothingBehind)
{
    auto volume = make_volume("v", 64 * MiB);
    auto data = pattern(1 * MiB, 20);
    for (u64 offset = 0; offset < 64 * MiB && volume->write(offset, data, false); offset += data.size()) { }
    ASSERT_OK(volume->flush());
    // Every snapshot makes the volume table that each commit rewrites larger, until the space
    // left after the data cannot hold it.
    ErrorOr<void> result;
    u32 made = 0;
    for (; made < 100000; ++made) {
        result = pool->snapshot("v", fmt::format("s{}", made), false);
        if (!result)
            break;
    }
    ASSERT_FALSE(result) << "the volume table never ran out of space";
    EXPECT_EQ(result.error().code(), ENOSPC) << result.error().to_string();
    EXPECT_FALSE(pool->volume_info(fmt::format("s{}", made))) << "the refused snapshot is listed";
    EXPECT_EQ(pool->volumes().size(), made + 1u);
    expect_clean();
    // Removing a snapshot makes room for one more.
    ASSERT_OK(pool->remove("s0"));
    ASSERT_OK(pool->finish_deletions());
    ASSERT_OK(pool->snapshot("v", "again", false));
    volume.reset();
    reopen();
    EXPECT_EQ(pool->volumes().size(), made + 1u);
    EXPECT_TRUE(pool->volume_info("again"));
    EXPECT_EQ(read(*MUST(pool->open_volume("again")), 0, data.size()), data);
    expect_clean();
}

TEST_F(ThinPoolTest, UncommittedWritesNeverChangeWhatTheLastCommitShares)
{
    auto volume = make_volume("v", 1 * MiB);
    auto original = pattern(CHUNK_SIZE, 17);
    ASSERT_OK(volume->write(0, original, true));
    ASSERT_OK(pool->snapshot("v", "c", true));
    auto clone = MUST(pool->open_volume("c"));
    // The clone copies chunk 0 away; the origin's chunk is then its own again, but the committed
    // state still shares it with the clone, so it must not be overwritten in place.
    ASSERT_OK(clone->write(0, pattern(4096, 18), false));
    ASSERT_OK(volume->write(0, pattern(4096, 19), false));
    // The disks write their caches back, but the pool never commits: the power fails first.
    for (auto* disk : disks.disks)
        ASSERT_OK(disk->flush());
    auto after = MUST(ThinPool::open(durable_images()));
    EXPECT_EQ(read(*MUST(after->open_volume("c")), 0, CHUNK_SIZE), original);
    auto origin_now = read(*MUST(after->open_volume("v")), 0, CHUNK_SIZE);
    EXPECT_TRUE(origin_now == original || std::equal(origin_now.begin(), origin_now.begin() + 4096, pattern(4096, 19).begin()));
    MUST(after->close());
}

TEST_F(ThinPoolTest, UncommittedWritesNeverChangeATreeNodeTheLastCommitShares)
{
    // The clone drops a whole leaf by discarding its range: the leaf and its chunk are then the
    // origin's alone in memory, but the committed state still shares the leaf with the clone.
    u64 leaf_span = NODE_FANOUT * CHUNK_SIZE;
    auto volume = make_volume("v", 2 * leaf_span);
    auto original = pattern(CHUNK_SIZE, 25);
    ASSERT_OK(volume->write(0, original, true));
    ASSERT_OK(pool->snapshot("v", "c", true));
    auto clone = MUST(pool->open_volume("c"));
    ASSERT_OK(clone->discard(0, leaf_span));
    ASSERT_OK(volume->write(0, pattern(4096, 26), false));
    // The disks write their caches back, but the pool never commits: the power fails first.
    for (auto* disk : disks.disks)
        ASSERT_OK(disk->flush());
    auto after = MUST(ThinPool::open(durable_images()));
    EXPECT_EQ(read(*MUST(after->open_volume("c")), 0, CHUNK_SIZE), original) << "the clone shows its origin's later write";
    EXPECT_TRUE(after->check().empty());
    MUST(after->close());
}

// Rewrites of allocated chunks run under the pool's shared lock, several at once; snapshots taken
// meanwhile still see each 4 KiB block whole, from one write or another, and the origin ends with
// every thread's last write.
TEST_F(ThinPoolTest, ConcurrentRewritesAndSnapshotsStayConsistent)
{
    constexpr u64 BLOCK = 4096;
    constexpr int THREADS = 4;
    constexpr int ROUNDS = 200;
    auto volume = make_volume("v", 1 * MiB);
    ASSERT_OK(volume->write(0, std::vector<u8>(1 * MiB, 0), true));
    std::atomic<bool> failed { false };
    std::vector<std::thread> writers;
    for (int t = 0; t < THREADS; ++t) {
        writers.emplace_back([&, t] {
            // Thread t owns every THREADS-th block; round r fills a block with byte (t * ROUNDS + r) % 251 + 1.
            for (int round = 0; round < ROUNDS && !failed; ++round) {
                for (u64 block = static_cast<u64>(t); block < 1 * MiB / BLOCK; block += THREADS) {
                    std::vector<u8> data(BLOCK, static_cast<u8>((t * ROUNDS + round) % 251 + 1));
                    if (!volume->write(block * BLOCK, data, false))
                        failed = true;
                }
            }
        });
    }
    for (int snapshot = 0; snapshot < 5; ++snapshot) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ASSERT_OK(pool->snapshot("v", fmt::format("s{}", snapshot), false));
    }
    for (auto& writer : writers)
        writer.join();
    ASSERT_FALSE(failed);
    for (int snapshot = 0; snapshot < 5; ++snapshot) {
        auto view = MUST(pool->open_volume(fmt::format("s{}", snapshot)));
        auto content = read(*view, 0, 1 * MiB);
        for (u64 block = 0; block < 1 * MiB / BLOCK; ++block) {
            auto first = content.begin() + static_cast<std::ptrdiff_t>(block * BLOCK);
            ASSERT_TRUE(std::all_of(first, first + BLOCK, [&](u8 b) { return b == *first; })) << "snapshot " << snapshot << " block " << block << " is torn";
        }
    }
    auto content = read(*volume, 0, 1 * MiB);
    for (u64 block = 0; block < 1 * MiB / BLOCK; ++block) {
        u8 last = static_cast<u8>((static_cast<int>(block % THREADS) * ROUNDS + ROUNDS - 1) % 251 + 1);
        ASSERT_EQ(content[block * BLOCK], last) << "block " << block;
    }
    expect_clean();
}

// Overlapping writes from several threads on a mirror leave both copies byte for byte equal:
// mirrored chunks never take the concurrent in-place path, where two writes could reach the
// copies in different orders.
// A member disk that pauses after each write for a random while, so that other threads' writes
// get in between the copies of a mirrored write.
class PausingDisk final : public MemberDisk {
public:
    explicit PausingDisk(std::unique_ptr<MemberDisk> disk)
        : m_disk(std::move(disk))
    {
    }
    std::string const& name() const override { return m_disk->name(); }
    u64 size() const override { return m_disk->size(); }
    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override { return m_disk->read(offset, buffer); }
    ErrorOr<void> write(u64 offset, std::span<u8 const> data) override
    {
        auto result = m_disk->write(offset, data);
        // Pauses of different lengths, so one thread's two copies can enclose another's.
        thread_local std::mt19937 random(std::hash<std::thread::id>()(std::this_thread::get_id()));
        std::this_thread::sleep_for(std::chrono::microseconds(random() % 200));
        return result;
    }
    ErrorOr<void> flush() override { return m_disk->flush(); }

private:
    std::unique_ptr<MemberDisk> m_disk;
};

TEST(ThinPoolMirror, ConcurrentOverlappingWritesKeepTheCopiesEqual)
{
    constexpr int THREADS = 4;
    constexpr u64 BLOCKS = 64;
    constexpr u64 BLOCK = 4 * KiB;
    test::FaultDisks disks;
    std::vector<std::unique_ptr<MemberDisk>> pausing;
    for (auto& disk : disks.make(2, 8 * MiB))
        pausing.push_back(std::make_unique<PausingDisk>(std::move(disk)));
    auto pool = MUST(ThinPool::create("twins", SegmentKind::Mirror, 0, std::move(pausing), false));
    MUST(pool->create_volume("v", BLOCKS * BLOCK));
    auto volume = MUST(pool->open_volume("v"));
    ASSERT_OK(volume->write(0, std::vector<u8>(BLOCKS * BLOCK, 0), true));
    // Every block is written once by every thread at the same moment; nothing overwrites it later.
    std::atomic<bool> failed { false };
    std::barrier start(THREADS);
    std::vector<std::thread> writers;
    for (int t = 0; t < THREADS; ++t) {
        writers.emplace_back([&, t] {
            std::vector<u8> data(BLOCK, static_cast<u8>(t + 1));
            for (u64 block = 0; block < BLOCKS; ++block) {
                start.arrive_and_wait();
                if (!volume->write(block * BLOCK, data, false))
                    failed = true;
            }
        });
    }
    for (auto& writer : writers)
        writer.join();
    ASSERT_FALSE(failed);
    ASSERT_OK(volume->flush());
    std::vector<u8> first(disks.disks[0]->size()), second(disks.disks[1]->size());
    MUST(disks.disks[0]->read(0, first));
    MUST(disks.disks[1]->read(0, second));
    EXPECT_TRUE(std::equal(first.begin() + MEMBER_HEADER_SIZE, first.end(), second.begin() + MEMBER_HEADER_SIZE))
        << "the two copies of the mirror disagree";
}

TEST_F(ThinPoolTest, UnflushedFirstWritesAreMappedWithinASecondWithoutFlushingTheirData)
{
    auto volume = make_volume("v", 1 * MiB);
    auto data = pattern(8192, 20);
    ASSERT_OK(volume->write(CHUNK_SIZE, data, false));
    u64 generation = pool->generation();
    pool->start_background();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (pool->generation() == generation && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_GT(pool->generation(), generation) << "no commit within 5 seconds";
    // What the disks hold for sure now maps the chunk; the data went to a hole and was not
    // flushed, so the chunk reads as the zeroes it held before.
    auto after = MUST(ThinPool::open(durable_images()));
    auto volume_after = MUST(after->open_volume("v"));
    auto extents = MUST(volume_after->block_status(CHUNK_SIZE, CHUNK_SIZE));
    ASSERT_EQ(extents.size(), 1u);
    EXPECT_TRUE(extents[0].allocated);
    EXPECT_EQ(read(*volume_after, CHUNK_SIZE, data.size()), std::vector<u8>(data.size(), 0));
    EXPECT_TRUE(after->check().empty());
    MUST(after->close());
}

TEST_F(ThinPoolTest, ChunksCopiedOnWriteAreDurableBeforeTheirMapping)
{
    auto volume = make_volume("v", 1 * MiB);
    auto before = pattern(CHUNK_SIZE, 21);
    ASSERT_OK(volume->write(0, before, false));
    ASSERT_OK(pool->snapshot("v", "s", false));
    auto data = pattern(4096, 22);
    ASSERT_OK(volume->write(512, data, false)); // copies the chunk the snapshot shares
    ASSERT_OK(pool->commit_mappings());
    auto after = MUST(ThinPool::open(durable_images()));
    auto expected = before;
    std::copy(data.begin(), data.end(), expected.begin() + 512);
    EXPECT_EQ(read(*MUST(after->open_volume("v")), 0, CHUNK_SIZE), expected);
    EXPECT_EQ(read(*MUST(after->open_volume("s")), 0, CHUNK_SIZE), before);
    MUST(after->close());
}

// A 2 MiB pool whose 1 MiB volume was written, removed and released: its free space holds data.
std::shared_ptr<ThinPool> pool_with_freed_space(FaultDisks& disks)
{
    auto tiny = MUST(ThinPool::create("tiny", SegmentKind::Linear, 0, disks.make(1, 2 * MiB), false));
    MUST(tiny->create_volume("old", 1 * MiB));
    MUST(MUST(tiny->open_volume("old"))->write(0, pattern(1 * MiB, 23), false));
    MUST(tiny->remove("old"));
    MUST(tiny->finish_deletions());
    MUST(tiny->commit());
    return tiny;
}

TEST_F(ThinPoolTest, FirstWritesOverReusedSpaceAreDurableBeforeTheirMapping)
{
    // A chunk freed by a removal holds the removed volume's data: mapped before the new data is
    // durable, it would show that data after a crash. A small pool, so that new chunks must reuse
    // the freed ones.
    FaultDisks small;
    auto tiny = pool_with_freed_space(small);
    MUST(tiny->create_volume("v", 4 * MiB));
    auto volume = MUST(tiny->open_volume("v"));
    auto data = pattern(4096, 24);
    u64 chunks = 0;
    while (chunks < 4 * MiB / CHUNK_SIZE && volume->write(chunks * CHUNK_SIZE + 4096, data, false))
        ++chunks;
    ASSERT_GT(chunks, 16u) << "the new volume did not reach the freed chunks";
    ASSERT_OK(tiny->commit_mappings());
    std::vector<std::unique_ptr<MemberDisk>> images;
    images.push_back(std::make_unique<FaultMemberDisk>(small.disks[0]->name(), small.disks[0]->durable_image()));
    auto after = MUST(ThinPool::open(std::move(images)));
    auto volume_after = MUST(after->open_volume("v"));
    auto expected = std::vector<u8>(CHUNK_SIZE, 0);
    std::copy(data.begin(), data.end(), expected.begin() + 4096);
    for (u64 chunk = 0; chunk < chunks; ++chunk) {
        // The data, or (over a hole, its write lost) the zeroes the chunk held before.
        auto chunk_data = read(*volume_after, chunk * CHUNK_SIZE, CHUNK_SIZE);
        ASSERT_TRUE(chunk_data == expected || chunk_data == std::vector<u8>(CHUNK_SIZE, 0)) << "chunk " << chunk << " shows other data";
    }
    MUST(after->close());
    MUST(tiny->close());
}

TEST_F(ThinPoolTest, FirstWritesOverChunksTheZeroerReadiedNeedNoFlushBeforeTheirMapping)
{
    // Space a removed volume freed, zeroed by the background zeroer before a new volume needs it:
    // a first write there is mapped by the commit without a flush of its data, and a crash can
    // only take the chunk back to zeroes, never to the removed volume's data.
    FaultDisks small;
    auto tiny = pool_with_freed_space(small);
    u64 free_bytes = tiny->usage().free;
    tiny->start_background();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (tiny->usage().zeroed < free_bytes && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(tiny->usage().zeroed, free_bytes) << "the zeroer did not zero the free space";
    MUST(tiny->create_volume("v", 4 * MiB));
    auto volume = MUST(tiny->open_volume("v"));
    auto data = pattern(4096, 24);
    u64 chunks = 0;
    while (chunks < 16 && volume->write(chunks * CHUNK_SIZE + 4096, data, false))
        ++chunks;
    ASSERT_EQ(chunks, 16u);
    EXPECT_LT(tiny->usage().zeroed, free_bytes) << "first writes did not take zeroed chunks";
    ASSERT_OK(tiny->commit_mappings());
    std::vector<std::unique_ptr<MemberDisk>> images;
    images.push_back(std::make_unique<FaultMemberDisk>(small.disks[0]->name(), small.disks[0]->durable_image()));
    auto after = MUST(ThinPool::open(std::move(images)));
    auto volume_after = MUST(after->open_volume("v"));
    for (u64 chunk = 0; chunk < chunks; ++chunk) {
        auto extents = MUST(volume_after->block_status(chunk * CHUNK_SIZE, CHUNK_SIZE));
        ASSERT_TRUE(extents.size() == 1 && extents[0].allocated) << "chunk " << chunk << " is not mapped";
        // Nothing flushed the data: the chunk reads as the zeroes the zeroer made durable.
        EXPECT_EQ(read(*volume_after, chunk * CHUNK_SIZE, CHUNK_SIZE), std::vector<u8>(CHUNK_SIZE, 0)) << "chunk " << chunk;
    }
    EXPECT_TRUE(after->check().empty());
    MUST(after->close());
    volume.reset();
    MUST(tiny->close());
}

TEST_F(ThinPoolTest, DisksOfAnotherPoolAreRefused)
{
    FaultDisks more;
    auto owned = more.make(1, 8 * MiB);
    auto* raw = owned.front().get();
    auto other = MUST(ThinPool::create("other", SegmentKind::Linear, 0, std::move(owned), false));
    MUST(other->close());
    std::vector<u8> image(raw->size());
    MUST(raw->read(0, image));
    std::vector<std::unique_ptr<MemberDisk>> again;
    again.push_back(std::make_unique<FaultMemberDisk>("reused", std::move(image)));
    auto result = pool->add_members(SegmentKind::Linear, 0, std::move(again), false);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("belongs to pool 'other'"), std::string::npos) << result.error().to_string();
}

} // namespace
} // namespace kasou::storage

namespace kasou::storage {
namespace {

// A chunk freed by one volume and allocated by another's first partial write shows nothing of its
// old content: the rest of the chunk is zeroed in place (FALLOC_FL_ZERO_RANGE on a file member,
// zero-filled writes on the in-memory disk). Run on both kinds of member disk, mirrored and striped.
class FirstWriteOverFreedChunks : public ::testing::TestWithParam<bool> {
protected:
    std::vector<std::unique_ptr<MemberDisk>> make_disks()
    {
        std::vector<std::unique_ptr<MemberDisk>> owned;
        if (!GetParam())
            return m_faults.make(2, 8 * MiB);
        for (int i = 0; i < 2; ++i) {
            m_files.push_back(std::make_unique<testing::ScratchFile>(8 * MiB));
            owned.push_back(MUST(FileMemberDisk::open(m_files.back()->path())));
        }
        return owned;
    }

private:
    test::FaultDisks m_faults;
    std::vector<std::unique_ptr<testing::ScratchFile>> m_files;
};

TEST_P(FirstWriteOverFreedChunks, ShowNoStaleData)
{
    for (auto kind : { SegmentKind::Mirror, SegmentKind::Striped }) {
        auto pool = MUST(ThinPool::create("reuse", kind, 16 * KiB, make_disks(), false));
        // Three quarters of the pool: the second volume cannot fit in what the first left unused.
        u64 const size = pool->usage().size * 3 / 4 / CHUNK_SIZE * CHUNK_SIZE;
        MUST(pool->create_volume("old", size));
        {
            auto old = MUST(pool->open_volume("old"));
            ASSERT_OK(old->write(0, std::vector<u8>(size, 0xA5), true));
        }
        ASSERT_OK(pool->remove("old"));
        ASSERT_OK(pool->finish_deletions());
        ASSERT_OK(pool->commit());
        MUST(pool->create_volume("new", size));
        auto fresh = MUST(pool->open_volume("new"));
        std::vector<u8> expected(size, 0);
        auto data = pattern(4096, 9);
        for (u64 chunk = 0; chunk < size / CHUNK_SIZE; ++chunk) {
            u64 offset = chunk * CHUNK_SIZE + (chunk * 4096) % CHUNK_SIZE;
            ASSERT_OK(fresh->write(offset, data, false));
            std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(offset));
        }
        std::vector<u8> seen(size);
        ASSERT_OK(fresh->read(0, seen));
        EXPECT_TRUE(seen == expected) << "stale bytes of the removed volume showed through (" << layout_name(kind) << ")";
        ASSERT_OK(fresh->flush());
        fresh.reset();
        EXPECT_TRUE(pool->check().empty());
        MUST(pool->close());
    }
}

INSTANTIATE_TEST_SUITE_P(MemberDisks, FirstWriteOverFreedChunks, ::testing::Values(false, true),
    [](auto const& info) { return info.param ? "files" : "in_memory"; });

} // namespace
} // namespace kasou::storage
