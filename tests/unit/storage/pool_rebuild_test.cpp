// Online mirror rebuilds and the write-intent bitmap: a copy rebuilt in ranges while writers write
// (checked against the byte model, and the two copies against each other), power cuts during a
// rebuild (the pool opens consistent and the rebuild goes on from its recorded position), and a
// resync after an unclean shutdown that copies only the regions that were being written.

#include <atomic>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/try.h"
#include "pool_test_support.h"
#include "pool_workload.h"

namespace kasou::storage {
namespace {

using test::FaultDisks;
using test::pattern;

constexpr u64 DISK_SIZE = 16 * MiB;
constexpr u64 VOLUME_SIZE = 8 * MiB;
constexpr u64 WRITERS = 2;

// A mirrored pool with volume "v" written whole and flushed, whose copy 1 then failed.
struct DegradedMirror {
    FaultDisks disks;
    std::shared_ptr<ThinPool> pool;
    test::VolumeModel model { VOLUME_SIZE };

    DegradedMirror()
    {
        pool = MUST(ThinPool::create("m", SegmentKind::Mirror, 0, disks.make(2, DISK_SIZE), false));
        MUST(pool->create_volume("v", VOLUME_SIZE));
        auto data = pattern(VOLUME_SIZE, 1);
        MUST(MUST(pool->open_volume("v"))->write(0, data, true));
        model.write(0, data);
        model.commit();
        disks.disks[1]->set_failed(true);
        auto more = pattern(4096, 2);
        MUST(MUST(pool->open_volume("v"))->write(0, more, true)); // fails copy 1
        model.write(0, more);
        model.commit();
        disks.disks[1]->set_failed(false);
    }
};

// Sector-aligned writes of one writer thread, in its own eighth of the volume each time, so the
// model can follow every thread without knowing their interleaving.
std::pair<u64, std::vector<u8>> writer_op(std::mt19937_64& random, u64 writer)
{
    u64 slice = VOLUME_SIZE / WRITERS;
    u64 length = (1 + random() % 64) * test::SECTOR;
    u64 offset = writer * slice + random() % ((slice - length) / test::SECTOR) * test::SECTOR;
    return { offset, pattern(length, random()) };
}

std::vector<u8> member_area(FaultMemberDisk& disk, u64 size)
{
    std::vector<u8> bytes(size);
    MUST(disk.read(MEMBER_HEADER_SIZE, bytes));
    return bytes;
}

TEST(PoolRebuild, ACopyRebuiltWhileWritersWriteHoldsTheirData)
{
    DegradedMirror mirror;
    auto& pool = *mirror.pool;
    FaultDisks spare;
    auto disk = spare.make(1, DISK_SIZE, "spare");
    std::atomic<bool> rebuilding { true };
    std::atomic<u64> writes_during { 0 };
    std::vector<std::vector<std::pair<u64, std::vector<u8>>>> done(WRITERS);
    std::vector<std::thread> writers;
    for (u64 w = 0; w < WRITERS; ++w) {
        writers.emplace_back([&, w] {
            std::mt19937_64 random(100 + w);
            auto volume = MUST(pool.open_volume("v"));
            while (rebuilding) {
                auto op = writer_op(random, w);
                MUST(volume->write(op.first, op.second, random() % 8 == 0));
                done[w].push_back(std::move(op));
                std::this_thread::sleep_for(std::chrono::microseconds(100));
                ++writes_during;
            }
        });
    }
    std::vector<u64> reported;
    ASSERT_OK(pool.replace_member(1, std::move(disk.front()), [&](u64 copied, u64 total) {
        EXPECT_LE(copied, total);
        reported.push_back(copied);
    }));
    rebuilding = false;
    for (auto& writer : writers)
        writer.join();
    EXPECT_GT(writes_during, 0u) << "the writers were held up for the whole rebuild";
    EXPECT_GT(reported.size(), 1u) << "the rebuild did not go in ranges";
    EXPECT_TRUE(std::is_sorted(reported.begin(), reported.end()));
    EXPECT_EQ(pool.layout().members()[1]->state, MemberState::Healthy);
    for (auto const& ops : done) {
        for (auto const& [offset, data] : ops)
            mirror.model.write(offset, data);
    }
    ASSERT_OK(pool.commit());
    std::vector<u8> actual(VOLUME_SIZE);
    ASSERT_OK(MUST(pool.open_volume("v"))->read(0, actual));
    EXPECT_TRUE(actual == mirror.model.current()) << "the volume does not hold what was written";
    EXPECT_TRUE(member_area(*mirror.disks.disks[0], pool.layout().size()) == member_area(*spare.disks[0], pool.layout().size()))
        << "the rebuilt copy differs from the one it was rebuilt from";
    auto faults = pool.check();
    EXPECT_TRUE(faults.empty()) << test::describe(faults);
    MUST(pool.close());
}

// The faults a pool opened in the middle of a rebuild may report: the member being rebuilt, or
// failed.
void expect_clean_but_for_the_rebuild(ThinPool& pool, std::string const& context)
{
    for (auto const& fault : pool.check()) {
        if (fault.find("is being rebuilt") == std::string::npos && fault.find("has failed") == std::string::npos)
            ADD_FAILURE() << "check: " << fault << "\n" << context;
    }
}

TEST(PoolRebuild, PowerCutsDuringARebuildLeaveAPoolThatFinishesIt)
{
    int resumed = 0;
    test::run_crash_points(12, 300, [&](u64 seed) {
        std::mt19937_64 random(seed);
        DegradedMirror mirror;
        auto& pool = *mirror.pool;
        FaultDisks spare;
        auto replacement = spare.make(1, DISK_SIZE, "spare");
        // The failed copy is written no more, and the replacement frees it: its image now.
        auto old_copy = std::make_unique<FaultMemberDisk>("disk1", mirror.disks.disks[1]->power_cut(random));
        auto power = std::make_shared<std::atomic<i64>>(static_cast<i64>(40 + random() % 400));
        mirror.disks.disks[0]->share_power(power);
        spare.disks[0]->share_power(power);
        // A writer and its flushes while the rebuild runs; the model follows what returned.
        std::atomic<bool> rebuilding { true };
        test::VolumeModel& model = mirror.model;
        std::mutex model_mutex;
        std::thread writer([&] {
            std::mt19937_64 ops(seed * 7);
            auto volume = MUST(pool.open_volume("v"));
            while (rebuilding) {
                auto op = writer_op(ops, ops() % WRITERS);
                if (!volume->write(op.first, op.second, false))
                    return;
                std::this_thread::sleep_for(std::chrono::microseconds(100));
                std::lock_guard guard(model_mutex);
                model.write(op.first, op.second);
                if (ops() % 4 == 0) {
                    if (!volume->flush())
                        return;
                    if (*power >= 0)
                        model.commit();
                }
            }
        });
        (void)pool.replace_member(1, std::move(replacement.front()), {});
        rebuilding = false;
        writer.join();
        // The power is cut now, if it had not failed already.
        FaultDisks after;
        FaultDisks cut { { mirror.disks.disks[0], spare.disks[0] } };
        auto images = cut.power_cut(random, after);
        // The pool knows the spare only if the commit that put it in landed; give both disks it
        // may know and the one it was.
        std::vector<std::unique_ptr<MemberDisk>> disks;
        disks.push_back(std::move(images[0]));
        auto try_open = [&](std::unique_ptr<MemberDisk> second) {
            std::vector<std::unique_ptr<MemberDisk>> set;
            set.push_back(std::make_unique<FaultMemberDisk>(disks[0]->name(), static_cast<FaultMemberDisk&>(*disks[0]).durable_image()));
            set.push_back(std::move(second));
            return ThinPool::open(std::move(set));
        };
        auto reopened = try_open(std::move(images[1]));
        std::string context = fmt::format("seed {}", seed);
        if (!reopened) { // the spare was never committed as member 1: the old copy is
            context += "; with the spare: " + reopened.error().to_string();
            reopened = try_open(std::move(old_copy));
        }
        ASSERT_TRUE(reopened) << reopened.error().to_string() << "\n" << context;
        auto& again = **reopened;
        expect_clean_but_for_the_rebuild(again, context);
        if (again.layout().members()[1]->state == MemberState::Rebuilding && again.layout().members()[1]->rebuilt > 0)
            ++resumed;
        std::vector<u8> actual(VOLUME_SIZE);
        ASSERT_OK(MUST(again.open_volume("v"))->read(0, actual));
        EXPECT_EQ(model.first_bad_sector(actual), -1) << context;
        // The rebuild goes on from where it was recorded, and the copies then agree.
        ASSERT_OK(again.resync_failed_members({}));
        EXPECT_EQ(again.layout().members()[1]->state, MemberState::Healthy) << context;
        auto faults = again.check();
        EXPECT_TRUE(faults.empty()) << test::describe(faults) << context;
        std::vector<u8> first(again.layout().size()), second(again.layout().size());
        MUST(again.layout().members()[0]->disk->read(MEMBER_HEADER_SIZE, first));
        MUST(again.layout().members()[1]->disk->read(MEMBER_HEADER_SIZE, second));
        EXPECT_TRUE(first == second) << "the copies differ after the rebuild\n" << context;
        MUST(again.close());
    });
    RecordProperty("rebuilds_resumed_past_zero", resumed);
    EXPECT_GE(resumed, 1) << "no power cut left a rebuild recorded past its start";
}

TEST(PoolRebuild, AResyncAfterAnUncleanShutdownCopiesOnlyTheRegionsBeingWritten)
{
    FaultDisks disks;
    auto pool = MUST(ThinPool::create("m", SegmentKind::Mirror, 0, disks.make(2, 64 * MiB + MEMBER_HEADER_SIZE), false));
    MUST(pool->create_volume("v", 32 * MiB));
    auto volume = MUST(pool->open_volume("v"));
    ASSERT_OK(volume->write(0, pattern(32 * MiB, 3), true)); // every chunk of the volume mapped
    // A flush with no metadata to write: every bit is cleared, the commit's own block writes too.
    ASSERT_OK(volume->write(0, pattern(4096, 4), false));
    ASSERT_OK(volume->flush());
    ASSERT_OK(volume->write(5 * MiB, pattern(4096, 5), false)); // one region written since
    auto durable = [&] {
        std::vector<std::unique_ptr<MemberDisk>> images;
        for (auto* disk : disks.disks)
            images.push_back(std::make_unique<FaultMemberDisk>(disk->name(), disk->durable_image()));
        return images;
    };
    {
        auto unclean = MUST(ThinPool::open(durable()));
        EXPECT_EQ(unclean->layout().resynced_regions(), 1u) << "only the region written since the last flush is copied";
        MUST(unclean->close());
    }
    volume.reset();
    MUST(pool->close());
    auto clean = MUST(ThinPool::open(durable()));
    EXPECT_EQ(clean->layout().resynced_regions(), 0u) << "a clean shutdown leaves nothing to copy";
    MUST(clean->close());
}

} // namespace
} // namespace kasou::storage
