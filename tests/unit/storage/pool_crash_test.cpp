// Power-cut crash tests: a random workload runs on a pool over fault-injecting disks, the power is
// cut at a random moment (sometimes after the disks started failing writes), and the pool opened
// from what the disks kept must be consistent, hold every flushed write exactly, hold old or new
// data elsewhere, and hold every snapshot unchanged.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/try.h"
#include "pool_test_support.h"
#include "pool_workload.h"

namespace kasou::storage {
namespace {

using test::FaultDisks;
using test::PoolModel;

constexpr int CRASH_POINTS_PER_LAYOUT = 80;

// One power-cut run: a pool over fault-injecting disks, a random series of operations on it, and
// the model of what each volume may hold should the power fail now. Invariant: the model follows
// every operation that returned, and commits only what the pool committed while it had power.
struct CrashRun {
    std::mt19937_64 random;
    FaultDisks disks;
    std::shared_ptr<ThinPool> pool;
    PoolModel model;
    int next_name { 0 };
    std::string log;

    explicit CrashRun(u64 seed)
        : random(seed)
    {
    }

    std::string pick(bool writable)
    {
        std::vector<std::string> names;
        for (auto const& [name, volume] : model.volumes()) {
            if (!writable || !volume.read_only)
                names.push_back(name);
        }
        return names.empty() ? std::string() : names[random() % names.size()];
    }

    std::shared_ptr<std::atomic<i64>> power; // writes and flushes left before the power fails

    // Called when a commit returned: it is durable unless the power failed before it ended.
    void committed()
    {
        if (power && *power < 0)
            return;
        model.commit();
    }

    // One random operation; returns false once an operation failed (the disks are failing).
    // data_only keeps to I/O: a failed snapshot, resize or removal may or may not have been
    // committed, which the model cannot tell.
    bool step(bool data_only = false)
    {
        u64 dice = random() % (data_only ? 75 : 100);
        std::string name = pick(dice < 75);
        if (name.empty())
            return true;
        bool read_only = model.at(name).read_only;
        u64 size = model.at(name).content.current().size();
        u64 offset = random() % (size / test::SECTOR) * test::SECTOR;
        u64 length = std::min<u64>((1 + random() % 300) * test::SECTOR, size - offset);
        auto device = pool->open_volume(name);
        if (!device)
            return false;
        // A full pool is no failure: the operation stops at the chunk that found no space, and
        // what it did before stays (and becomes durable with the next flush).
        auto report = [&](ErrorOr<void> const& result) {
            if (!result)
                log += "  failed: " + result.error().to_string() + "\n";
            if (!result && result.error().code() == ENOSPC) {
                std::vector<u8> now(length);
                MUST((*device)->read(offset, now));
                model.write(name, offset, now);
            }
            return result || result.error().code() == ENOSPC;
        };
        if (dice < 50) {
            bool fua = random() % 8 == 0;
            auto data = test::pattern(length, random());
            log += fmt::format("write {} {}+{}{}\n", name, offset, length, fua ? " fua" : "");
            model.write(name, offset, data); // a failed write may still have reached the disk
            auto result = (*device)->write(offset, data, fua);
            if (result && fua)
                committed();
            return report(result);
        }
        if (dice < 58) {
            log += fmt::format("discard {} {}+{}\n", name, offset, length);
            model.write(name, offset, std::vector<u8>(length, 0));
            return report((*device)->discard(offset, length));
        }
        if (dice < 64) {
            log += fmt::format("zero {} {}+{}\n", name, offset, length);
            model.write(name, offset, std::vector<u8>(length, 0));
            return report((*device)->write_zeroes(offset, length, random() % 2));
        }
        if (dice < 70) {
            log += "flush\n";
            auto result = (*device)->flush();
            if (result)
                committed();
            return report(result);
        }
        if (dice < 75) {
            // What the background thread does: the mappings become current, the data written
            // stays as durable as it was, so the model does not change.
            log += "commit mappings\n";
            return report(pool->commit_mappings());
        }
        device->reset();
        // Snapshots, resizes and removals need space only for metadata and the chunk a shrink
        // cuts; they are kept to a pool that has it, and must then succeed: one failed for want
        // of space may have half-happened in memory, which the model cannot follow.
        auto usage = pool->usage();
        bool room = usage.free >= usage.reserve + 4 * CHUNK_SIZE;
        auto succeeded = [&](ErrorOr<void> const& result) {
            if (!result)
                log += "  failed: " + result.error().to_string() + "\n";
            return result.has_value();
        };
        std::string fresh = fmt::format("v{}", next_name++);
        if (room && dice < 83 && model.volumes().size() < 8) {
            bool writable = read_only || random() % 3 == 0;
            log += fmt::format("{} {} {}\n", writable ? "clone" : "snapshot", name, fresh);
            if (!succeeded(pool->snapshot(name, fresh, writable)))
                return false;
            model.snapshot(name, fresh, writable);
            return true;
        }
        if (room && dice < 90 && !read_only) {
            u64 new_size = (256 + random() % 1280) * KiB;
            log += fmt::format("resize {} {}\n", name, new_size);
            if (!succeeded(pool->resize(name, new_size)))
                return false;
            model.resize(name, new_size);
            return true;
        }
        if (room && model.volumes().size() > 2) {
            log += fmt::format("remove {}\n", name);
            if (!succeeded(pool->remove(name)))
                return false;
            model.remove(name);
            return true;
        }
        log += "release removed volumes\n";
        if (!succeeded(pool->finish_deletions()))
            return false;
        committed();
        return true;
    }
};

void crash_once(SegmentKind kind, u64 seed)
{
    CrashRun run(seed);
    run.pool = MUST(ThinPool::create("crash", kind, kind == SegmentKind::Striped ? 32 * KiB : 0, run.disks.make(2, 3 * MiB), false));
    for (auto const& [name, size] : { std::pair { "a", 1 * MiB }, std::pair { "b", 512 * KiB } }) {
        MUST(run.pool->create_volume(name, size));
        run.model.create(name, size);
    }
    u64 steps = 1 + run.random() % 60;
    for (u64 i = 0; i < steps; ++i) {
        if (!run.step())
            FAIL() << "operation failed on healthy disks\n" << run.log;
    }
    u64 ending = run.random() % 4;
    bool disks_failed = ending == 0;
    if (ending == 1) {
        // The power fails during one of the next operations, possibly inside a commit.
        run.power = std::make_shared<std::atomic<i64>>(static_cast<i64>(run.random() % 40));
        for (auto* disk : run.disks.disks)
            disk->share_power(run.power);
        run.log += fmt::format("power fails after {} more writes or flushes\n", run.power->load());
        for (int i = 0; i < 6 && *run.power >= 0 && run.step(true); ++i) { }
    }
    if (disks_failed) {
        // The disks start failing: a random disk fails every write after a few more.
        auto* disk = run.disks.disks[run.random() % run.disks.disks.size()];
        disk->fail_writes_after(run.random() % 12);
        run.log += fmt::format("{} fails writes from now on\n", disk->name());
        for (int i = 0; i < 6 && run.step(true); ++i) { }
    }
    FaultDisks after;
    auto images = run.disks.power_cut(run.random, after);
    auto reopened = ThinPool::open(std::move(images));
    ASSERT_TRUE(reopened) << reopened.error().to_string() << "\n" << run.log;
    test::expect_pool_matches(**reopened, run.model, disks_failed, run.log);
    MUST((*reopened)->close());
    MUST(run.pool->close().or_else([](Error const&) -> ErrorOr<void> { return {}; }));
}

TEST(PoolCrash, PowerCutsOnLinearPools)
{
    test::run_crash_points(CRASH_POINTS_PER_LAYOUT, 1000, [](u64 seed) { crash_once(SegmentKind::Linear, seed); });
}

TEST(PoolCrash, PowerCutsOnStripedPools)
{
    test::run_crash_points(CRASH_POINTS_PER_LAYOUT, 2000, [](u64 seed) { crash_once(SegmentKind::Striped, seed); });
}

TEST(PoolCrash, PowerCutsOnMirroredPools)
{
    test::run_crash_points(CRASH_POINTS_PER_LAYOUT, 3000, [](u64 seed) { crash_once(SegmentKind::Mirror, seed); });
}

} // namespace
} // namespace kasou::storage
