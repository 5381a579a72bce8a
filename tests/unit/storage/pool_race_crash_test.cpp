// Power cuts while commits race with I/O: writer threads, a thread that flushes and commits, and a
// thread that writes a volume and its writable clone and takes and removes snapshots all run at
// once on a pool over fault-injecting disks, so commits gather, write and land while writes
// allocate, copy and overwrite chunks, some of them shared. The power fails after a random number
// of disk writes and flushes; the pool opened from what the disks kept must pass its check, hold
// every write that a successful flush, FUA write or snapshot covered, hold old or new data
// elsewhere, and hold every snapshot exactly as it was taken.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/try.h"
#include "pool_test_support.h"
#include "pool_workload.h"

namespace kasou::storage {
namespace {

using test::FaultDisks;
using test::SECTOR;
using test::VolumeModel;

constexpr int CRASH_POINTS_PER_LAYOUT = 25;
constexpr u32 WRITERS = 3;
constexpr u64 REGION_SIZE = 256 * KiB; // each writer's part of volume "a"
constexpr u64 SNAPSHOTTED_SIZE = 384 * KiB;
constexpr u32 OPERATIONS_PER_THREAD = 60;
constexpr size_t SNAPSHOTS_KEPT = 3;

// One write as its thread saw it: done is the clock value when it returned (0: it did not).
struct WriteRecord {
    u64 offset { 0 };
    std::vector<u8> data;
    u64 done { 0 };
};

// What one thread wrote to the range it alone writes, and how much of it is sure to be durable.
struct WriteLog {
    u64 base { 0 };
    u64 size { 0 };
    std::vector<WriteRecord> writes;
    size_t durable_count { 0 }; // the first writes a FUA write of this thread made durable

    // The model of the range after a power cut, given the clock value up to which every
    // returned write is durable.
    VolumeModel model(std::vector<u8> const& initial, u64 durable_mark) const
    {
        VolumeModel result(size);
        result.write(0, initial);
        result.commit();
        size_t durable = durable_count;
        for (size_t i = 0; i < writes.size(); ++i) {
            if (writes[i].done != 0 && writes[i].done <= durable_mark)
                durable = std::max(durable, i + 1);
        }
        for (size_t i = 0; i < writes.size(); ++i) {
            if (i == durable)
                result.commit();
            result.write(writes[i].offset - base, writes[i].data);
        }
        if (durable == writes.size())
            result.commit();
        return result;
    }
};

// A snapshot the snapshot thread took: its content, and whether its removal began.
struct SnapshotRecord {
    std::vector<u8> content;
    bool committed { false }; // the snapshot call returned with the power on
    bool removing { false };
};

// One run. Invariants: each WriteLog is written by one thread only; durable_mark only grows, and
// only by commits that returned while the disks had power.
struct RaceRun {
    std::mt19937_64 random;
    FaultDisks disks;
    std::shared_ptr<ThinPool> pool;
    std::shared_ptr<std::atomic<i64>> power;
    std::atomic<u64> clock { 0 };
    std::atomic<u64> durable_mark { 0 };
    std::vector<u8> initial_a;
    std::vector<u8> initial_b; // also the initial content of its clone "c"
    std::vector<WriteLog> logs; // WRITERS regions of "a", then volumes "b" and "c"
    std::map<std::string, SnapshotRecord> snapshots;
    std::mutex failures_mutex;
    std::string failures;

    explicit RaceRun(u64 seed)
        : random(seed)
    {
    }

    bool powered() const { return *power >= 0; }

    // A commit that began at clock value start returned: what returned before it is durable.
    void committed(u64 start)
    {
        if (!powered())
            return;
        u64 mark = durable_mark.load();
        while (mark < start && !durable_mark.compare_exchange_weak(mark, start)) { }
    }

    void fail(std::string const& what, Error const& error)
    {
        std::lock_guard lock(failures_mutex);
        failures += fmt::format("{}: {}\n", what, error.to_string());
    }

    // Writes at random into log's range of volume, one in eight with FUA.
    bool write_some(BlockDevice& volume, WriteLog& log, std::mt19937_64& thread_random)
    {
        u64 offset = log.base + thread_random() % (log.size / SECTOR) * SECTOR;
        u64 length = std::min<u64>((1 + thread_random() % 160) * SECTOR, log.base + log.size - offset);
        bool fua = thread_random() % 8 == 0;
        log.writes.push_back({ offset, test::pattern(length, thread_random()), 0 });
        u64 start = clock.load();
        if (auto result = volume.write(offset, log.writes.back().data, fua); !result) {
            fail(fmt::format("write at {}", offset), result.error());
            return false;
        }
        log.writes.back().done = ++clock;
        if (fua && powered()) {
            log.durable_count = log.writes.size();
            committed(start);
        }
        return true;
    }

    void writer(u32 index, u64 seed)
    {
        std::mt19937_64 thread_random(seed);
        auto volume = MUST(pool->open_volume("a"));
        for (u32 i = 0; i < OPERATIONS_PER_THREAD && powered(); ++i) {
            if (!write_some(*volume, logs[index], thread_random))
                return;
        }
    }

    // Flushes, and in between commits the mappings alone as the background thread does. Each
    // commit's flush of the first disk is held up a little, so that the other threads' writes
    // land while the commit is in flight, without the pool lock; now and then the power then
    // fails within the next few disk calls, inside that commit.
    void flusher(u64 seed)
    {
        std::mt19937_64 thread_random(seed);
        auto volume = MUST(pool->open_volume("a"));
        for (u32 i = 0; i < OPERATIONS_PER_THREAD && powered(); ++i) {
            bool cut = thread_random() % 8 == 0;
            i64 calls_left = static_cast<i64>(thread_random() % 4);
            disks.disks[0]->before_next_flush([this, cut, calls_left] {
                std::this_thread::sleep_for(std::chrono::microseconds(300));
                if (cut && *power > calls_left)
                    *power = calls_left;
            });
            u64 start = clock.load();
            bool flush = i % 2 == 0;
            if (auto result = flush ? volume->flush() : pool->commit_mappings(); !result) {
                fail(flush ? "flush" : "commit mappings", result.error());
                return;
            }
            if (flush)
                committed(start);
            std::this_thread::yield();
        }
    }

    // Writes to "b" and to its clone "c", which share chunks until either copies them, and
    // snapshots "b", keeping SNAPSHOTS_KEPT snapshots: copies and removals change the reference
    // counts of chunks that the other volume then overwrites while other threads' commits run.
    void snapshotter(u64 seed)
    {
        std::mt19937_64 thread_random(seed);
        auto b = MUST(pool->open_volume("b"));
        auto c = MUST(pool->open_volume("c"));
        std::vector<u8> content = initial_b; // of "b"
        int next = 0;
        for (u32 i = 0; i < OPERATIONS_PER_THREAD && powered(); ++i) {
            u64 dice = thread_random() % 8;
            if (dice < 3) {
                if (!write_some(*c, logs[WRITERS + 1], thread_random))
                    return;
                continue;
            }
            if (dice < 6) {
                auto& log = logs[WRITERS];
                if (!write_some(*b, log, thread_random))
                    return;
                auto const& written = log.writes.back();
                std::copy(written.data.begin(), written.data.end(), content.begin() + static_cast<long>(written.offset));
                continue;
            }
            std::string name = fmt::format("s{}", next++);
            snapshots[name].content = content;
            u64 start = clock.load();
            if (auto result = pool->snapshot("b", name, false); !result) {
                fail("snapshot " + name, result.error());
                return;
            }
            snapshots[name].committed = powered();
            committed(start);
            size_t live = 0;
            for (auto const& [other, record] : snapshots)
                live += !record.removing;
            if (live <= SNAPSHOTS_KEPT)
                continue;
            auto oldest = std::find_if(snapshots.begin(), snapshots.end(), [](auto const& entry) { return !entry.second.removing; });
            oldest->second.removing = true;
            start = clock.load();
            if (auto result = pool->remove(oldest->first); !result) {
                fail("remove " + oldest->first, result.error());
                return;
            }
            committed(start);
        }
    }

    std::string describe() const
    {
        std::string text = fmt::format("power left {}, durable mark {} of clock {}\n", power->load(), durable_mark.load(), clock.load());
        for (size_t i = 0; i < logs.size(); ++i)
            text += fmt::format("  thread {}: {} writes, {} durable by FUA\n", i, logs[i].writes.size(), logs[i].durable_count);
        return text;
    }
};

std::vector<u8> read_volume(ThinPool& pool, std::string const& name, u64 offset, u64 length)
{
    std::vector<u8> data(length);
    MUST(MUST(pool.open_volume(name))->read(offset, data));
    return data;
}

void race_once(SegmentKind kind, u64 seed)
{
    RaceRun run(seed);
    run.pool = MUST(ThinPool::create("race", kind, kind == SegmentKind::Striped ? 32 * KiB : 0, run.disks.make(2, 6 * MiB), false));
    MUST(run.pool->create_volume("a", WRITERS * REGION_SIZE));
    MUST(run.pool->create_volume("b", SNAPSHOTTED_SIZE));
    // "a" starts out written and shared with a snapshot, so that writes copy its chunks too.
    run.initial_a = test::pattern(WRITERS * REGION_SIZE, seed);
    MUST(MUST(run.pool->open_volume("a"))->write(0, run.initial_a, false));
    MUST(run.pool->snapshot("a", "a-start", false));
    run.initial_b = test::pattern(SNAPSHOTTED_SIZE, seed + 1);
    MUST(MUST(run.pool->open_volume("b"))->write(0, run.initial_b, false));
    MUST(run.pool->snapshot("b", "c", true));
    for (u32 i = 0; i < WRITERS; ++i)
        run.logs.push_back({ i * REGION_SIZE, REGION_SIZE, {}, 0 });
    run.logs.push_back({ 0, SNAPSHOTTED_SIZE, {}, 0 });
    run.logs.push_back({ 0, SNAPSHOTTED_SIZE, {}, 0 });

    run.power = std::make_shared<std::atomic<i64>>(static_cast<i64>(20 + run.random() % 400));
    for (auto* disk : run.disks.disks)
        disk->share_power(run.power);
    std::vector<std::thread> threads;
    for (u32 i = 0; i < WRITERS; ++i)
        threads.emplace_back([&run, i, seed = run.random()] { run.writer(i, seed); });
    threads.emplace_back([&run, seed = run.random()] { run.flusher(seed); });
    threads.emplace_back([&run, seed = run.random()] { run.snapshotter(seed); });
    for (auto& thread : threads)
        thread.join();
    ASSERT_TRUE(run.failures.empty()) << "operations failed on healthy disks:\n" << run.failures << run.describe();

    FaultDisks after;
    auto images = run.disks.power_cut(run.random, after);
    auto reopened_or_error = ThinPool::open(std::move(images));
    ASSERT_TRUE(reopened_or_error) << reopened_or_error.error().to_string() << "\n" << run.describe();
    auto& reopened = **reopened_or_error;
    auto context = fmt::format("seed {}\n{}", seed, run.describe());
    EXPECT_EQ(test::describe(reopened.check()), "") << context;

    EXPECT_EQ(read_volume(reopened, "a-start", 0, WRITERS * REGION_SIZE), run.initial_a) << "snapshot a-start changed\n" << context;
    u64 mark = run.durable_mark.load();
    for (u32 i = 0; i < WRITERS; ++i) {
        auto const& log = run.logs[i];
        auto initial = std::vector<u8>(run.initial_a.begin() + static_cast<long>(log.base), run.initial_a.begin() + static_cast<long>(log.base + log.size));
        auto bad = log.model(initial, mark).first_bad_sector(read_volume(reopened, "a", log.base, log.size));
        EXPECT_EQ(bad, -1) << "writer " << i << ": sector " << bad << " of its range holds neither durable nor later data\n" << context;
    }
    for (u32 i = 0; i < 2; ++i) {
        std::string name = i == 0 ? "b" : "c";
        auto bad = run.logs[WRITERS + i].model(run.initial_b, mark).first_bad_sector(read_volume(reopened, name, 0, SNAPSHOTTED_SIZE));
        EXPECT_EQ(bad, -1) << "volume " << name << ": sector " << bad << " holds neither durable nor later data\n" << context;
    }

    auto present = test::shape_of(reopened);
    for (auto const& [name, record] : run.snapshots) {
        if (!present.contains(name)) {
            EXPECT_FALSE(record.committed && !record.removing) << "snapshot " << name << " was committed but is gone\n" << context;
            continue;
        }
        EXPECT_TRUE(read_volume(reopened, name, 0, SNAPSHOTTED_SIZE) == record.content) << "snapshot " << name << " changed\n" << context;
    }
    MUST(reopened.close());
    MUST(run.pool->close().or_else([](Error const&) -> ErrorOr<void> { return {}; }));
}

// Runs pool.flush() and, while its commit waits for the first disk's flush (without the pool
// lock), during(); what that wrote reaches the platter, and the power fails before the commit's
// own flush. Returns the pool opened from what the disks then hold.
std::shared_ptr<ThinPool> cut_power_during_commit(FaultDisks& disks, ThinPool& pool, std::function<void()> const& during)
{
    auto power = std::make_shared<std::atomic<i64>>(1 << 20);
    for (auto* disk : disks.disks)
        disk->share_power(power);
    disks.disks[0]->before_next_flush([&] {
        during();
        for (auto* disk : disks.disks)
            MUST(disk->flush());
        *power = 0;
    });
    MUST(pool.flush());
    std::mt19937_64 random(1);
    FaultDisks after;
    return MUST(ThinPool::open(disks.power_cut(random, after)));
}

// content with data written over its second sector.
std::vector<u8> with_sector_written(std::vector<u8> content, std::vector<u8> const& data)
{
    std::copy(data.begin(), data.end(), content.begin() + static_cast<long>(SECTOR));
    return content;
}

// A chunk that a volume and its clone shared in the committed state, which the volume then
// copied away from, is the clone's alone in memory; a commit gathering that state makes it so on
// disk only once it lands. A write to the clone while the commit waits for its flush must copy
// the chunk, not overwrite it: the power failing before the superblock would otherwise leave the
// volume, in the state on disk, showing the clone's data.
TEST(PoolRaceCrash, WritesDuringACommitLeaveChunksTheStateOnDiskSharesAlone)
{
    FaultDisks disks;
    auto pool = MUST(ThinPool::create("race", SegmentKind::Linear, 0, disks.make(1, 4 * MiB), false));
    MUST(pool->create_volume("b", 4 * CHUNK_SIZE));
    auto original = test::pattern(CHUNK_SIZE, 1);
    auto b = MUST(pool->open_volume("b"));
    MUST(b->write(CHUNK_SIZE, original, false));
    MUST(pool->snapshot("b", "c", true));
    auto c = MUST(pool->open_volume("c"));
    // A first write gives each its own tree path, committed; both leaves map the second chunk.
    MUST(b->write(0, test::pattern(SECTOR, 2), false));
    MUST(pool->flush());
    auto b_data = test::pattern(SECTOR, 3);
    auto c_data = test::pattern(SECTOR, 4);
    MUST(b->write(CHUNK_SIZE + SECTOR, b_data, false)); // "b" copies the chunk: "c" alone has it

    auto reopened = cut_power_during_commit(disks, *pool, [&] { MUST(c->write(CHUNK_SIZE + SECTOR, c_data, false)); });
    EXPECT_EQ(test::describe(reopened->check()), "");
    auto actual_b = read_volume(*reopened, "b", CHUNK_SIZE, CHUNK_SIZE);
    EXPECT_TRUE(actual_b == original || actual_b == with_sector_written(original, b_data)) << "volume b shows data written to its clone";
    auto actual_c = read_volume(*reopened, "c", CHUNK_SIZE, CHUNK_SIZE);
    EXPECT_TRUE(actual_c == original || actual_c == with_sector_written(original, c_data));
    MUST(reopened->close());
    MUST(pool->close().or_else([](Error const&) -> ErrorOr<void> { return {}; }));
}

// The same for a tree node: a clone discarding a whole leaf's range leaves the leaf to the origin
// alone in memory while the committed state still shares it; the origin's write while a commit
// that gathered this waits for its flush must copy the leaf's chunk, not overwrite it.
TEST(PoolRaceCrash, WritesDuringACommitLeaveTreeNodesTheStateOnDiskSharesAlone)
{
    FaultDisks disks;
    auto pool = MUST(ThinPool::create("race", SegmentKind::Linear, 0, disks.make(1, 4 * MiB), false));
    u64 leaf_span = NODE_FANOUT * CHUNK_SIZE;
    MUST(pool->create_volume("v", 2 * leaf_span));
    auto original = test::pattern(CHUNK_SIZE, 4);
    auto v = MUST(pool->open_volume("v"));
    MUST(v->write(0, original, false));
    MUST(pool->snapshot("v", "c", true));
    MUST(MUST(pool->open_volume("c"))->discard(0, leaf_span));
    auto v_data = test::pattern(SECTOR, 5);

    auto reopened = cut_power_during_commit(disks, *pool, [&] { MUST(v->write(SECTOR, v_data, false)); });
    EXPECT_EQ(test::describe(reopened->check()), "");
    auto actual_c = read_volume(*reopened, "c", 0, CHUNK_SIZE);
    EXPECT_TRUE(actual_c == original || actual_c == std::vector<u8>(CHUNK_SIZE, 0)) << "the clone shows its origin's write";
    MUST(reopened->close());
    MUST(pool->close().or_else([](Error const&) -> ErrorOr<void> { return {}; }));
}

TEST(PoolRaceCrash, PowerCutsWhileCommitsRaceWithWritesOnLinearPools)
{
    test::run_crash_points(CRASH_POINTS_PER_LAYOUT, 4000, [](u64 seed) { race_once(SegmentKind::Linear, seed); });
}

TEST(PoolRaceCrash, PowerCutsWhileCommitsRaceWithWritesOnStripedPools)
{
    test::run_crash_points(CRASH_POINTS_PER_LAYOUT, 5000, [](u64 seed) { race_once(SegmentKind::Striped, seed); });
}

TEST(PoolRaceCrash, PowerCutsWhileCommitsRaceWithWritesOnMirroredPools)
{
    test::run_crash_points(CRASH_POINTS_PER_LAYOUT, 6000, [](u64 seed) { race_once(SegmentKind::Mirror, seed); });
}

} // namespace
} // namespace kasou::storage
