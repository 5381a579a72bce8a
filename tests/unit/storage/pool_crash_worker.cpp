// Runs the crash workload on a pool of files until it is killed:
//   pool_crash_worker SEED [--die OP IO] DISK...
// Reports on standard output "B k" before operation k and "C k" once a committing operation k has
// returned, so the test that kills it knows what must be durable and what may be. With --die it
// kills itself with SIGKILL just before the IO-th write or flush of a member disk (counting from
// 0) issued once operation OP began: a kill at a chosen step inside a snapshot, clone or resize.

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "base/try.h"
#include "pool_workload.h"
#include "storage/pool/file_member_disk.h"
#include "storage/pool/thin_pool.h"

using namespace kasou;
using namespace kasou::storage;

namespace {

// A member disk that kills the whole process before a chosen write or flush. The countdown is
// shared by all disks of the pool and disarmed (at its largest value) until the worker arms it.
class DyingDisk final : public MemberDisk {
public:
    DyingDisk(std::unique_ptr<MemberDisk> disk, std::shared_ptr<std::atomic<i64>> countdown)
        : m_disk(std::move(disk))
        , m_countdown(std::move(countdown))
    {
    }

    std::string const& name() const override { return m_disk->name(); }
    u64 size() const override { return m_disk->size(); }
    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override { return m_disk->read(offset, buffer); }
    ErrorOr<void> write(u64 offset, std::span<u8 const> data) override
    {
        step();
        return m_disk->write(offset, data);
    }
    ErrorOr<void> write_zeroes(u64 offset, u64 length) override
    {
        step();
        return m_disk->write_zeroes(offset, length);
    }
    ErrorOr<void> flush() override
    {
        step();
        return m_disk->flush();
    }

private:
    void step()
    {
        if (m_countdown->fetch_sub(1) == 0)
            ::raise(SIGKILL);
    }

    std::unique_ptr<MemberDisk> m_disk;
    std::shared_ptr<std::atomic<i64>> m_countdown;
};

constexpr i64 DISARMED = std::numeric_limits<i64>::max();

ErrorOr<void> run(u64 seed, long long die_op, i64 die_io, std::vector<std::string> const& paths)
{
    auto countdown = std::make_shared<std::atomic<i64>>(DISARMED);
    std::vector<std::unique_ptr<MemberDisk>> disks;
    for (auto const& path : paths)
        disks.push_back(std::make_unique<DyingDisk>(TRY(FileMemberDisk::open(path)), countdown));
    auto pool = TRY(ThinPool::open(std::move(disks)));
    pool->start_background();
    std::map<std::string, std::shared_ptr<BlockDevice>> devices;
    auto device = [&](std::string const& name) -> ErrorOr<BlockDevice*> {
        auto& slot = devices[name];
        if (!slot)
            slot = TRY(pool->open_volume(name));
        return slot.get();
    };
    auto ops = test::make_workload(seed, TRY(device("a"))->size(), 100000);
    std::printf("R\n");
    std::fflush(stdout);
    for (size_t k = 0; k < ops.size(); ++k) {
        auto const& op = ops[k];
        std::printf("B %zu\n", k);
        std::fflush(stdout);
        if (static_cast<long long>(k) == die_op)
            *countdown = die_io;
        ErrorOr<void> result;
        switch (op.kind) {
        case test::OpKind::Write:
        case test::OpKind::FuaWrite:
            result = TRY(device(op.volume))->write(op.offset, test::op_data(op), op.kind == test::OpKind::FuaWrite);
            break;
        case test::OpKind::Flush:
            result = TRY(device(op.volume))->flush();
            break;
        case test::OpKind::Discard:
            result = TRY(device(op.volume))->discard(op.offset, op.length);
            break;
        case test::OpKind::WriteZeroes:
            result = TRY(device(op.volume))->write_zeroes(op.offset, op.length, op.data_seed % 2);
            break;
        case test::OpKind::Snapshot:
        case test::OpKind::Clone:
            result = pool->snapshot(op.volume, op.name, op.kind == test::OpKind::Clone);
            break;
        case test::OpKind::Resize:
            result = pool->resize(op.volume, op.length);
            break;
        }
        // Any failure, ENOSPC included, ends the run: the test's replay could not follow it.
        if (!result)
            return result;
        if (test::commits(op.kind)) {
            std::printf("C %zu\n", k);
            std::fflush(stdout);
        }
    }
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    long long die_op = -1;
    i64 die_io = 0;
    if (args.size() >= 4 && args[1] == "--die") {
        die_op = std::strtoll(args[2].c_str(), nullptr, 10);
        die_io = std::strtoll(args[3].c_str(), nullptr, 10);
        args.erase(args.begin() + 1, args.begin() + 4);
    }
    if (args.size() < 2) {
        std::fprintf(stderr, "usage: pool_crash_worker SEED [--die OP IO] DISK...\n");
        return 2;
    }
    u64 seed = std::strtoull(args[0].c_str(), nullptr, 10);
    if (auto result = run(seed, die_op, die_io, { args.begin() + 1, args.end() }); !result) {
        std::fprintf(stderr, "pool_crash_worker: %s\n", result.error().to_string().c_str());
        return 1;
    }
    return 0;
}
