// Runs the crash workload on a pool of files until it is killed: pool_crash_worker DISK... SEED.
// Reports on standard output "B k" before operation k and "C k" once a committing operation k has
// returned, so the test that kills it knows what must be durable and what may be.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/try.h"
#include "pool_workload.h"
#include "storage/pool/file_member_disk.h"
#include "storage/pool/thin_pool.h"

using namespace kasou;
using namespace kasou::storage;

namespace {

ErrorOr<void> run(std::vector<std::string> const& paths, u64 seed)
{
    std::vector<std::unique_ptr<MemberDisk>> disks;
    for (auto const& path : paths)
        disks.push_back(TRY(FileMemberDisk::open(path)));
    auto pool = TRY(ThinPool::open(std::move(disks)));
    pool->start_background();
    auto volume = TRY(pool->open_volume("a"));
    auto ops = test::make_workload(seed, volume->size(), 100000);
    std::printf("R\n");
    std::fflush(stdout);
    for (size_t k = 0; k < ops.size(); ++k) {
        auto const& op = ops[k];
        std::printf("B %zu\n", k);
        std::fflush(stdout);
        ErrorOr<void> result;
        bool commits = false;
        switch (op.kind) {
        case test::OpKind::Write:
            result = volume->write(op.offset, test::op_data(op), false);
            break;
        case test::OpKind::FuaWrite:
            result = volume->write(op.offset, test::op_data(op), true);
            commits = true;
            break;
        case test::OpKind::Flush:
            result = volume->flush();
            commits = true;
            break;
        case test::OpKind::Discard:
            result = volume->discard(op.offset, op.length);
            break;
        case test::OpKind::WriteZeroes:
            result = volume->write_zeroes(op.offset, op.length, op.data_seed % 2);
            break;
        case test::OpKind::Snapshot:
            result = pool->snapshot("a", op.name, false);
            commits = true;
            break;
        }
        // Any failure, ENOSPC included, ends the run: the test's replay could not follow it.
        if (!result)
            return result;
        if (commits && result) {
            std::printf("C %zu\n", k);
            std::fflush(stdout);
        }
    }
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: pool_crash_worker DISK... SEED\n");
        return 2;
    }
    std::vector<std::string> paths(argv + 1, argv + argc - 1);
    if (auto result = run(paths, std::strtoull(argv[argc - 1], nullptr, 10)); !result) {
        std::fprintf(stderr, "pool_crash_worker: %s\n", result.error().to_string().c_str());
        return 1;
    }
    return 0;
}
