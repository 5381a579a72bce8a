// Kill tests: a real process runs a workload on a pool of files and is killed with SIGKILL at a
// random moment; the pool opened afterwards must be consistent and hold every committed write,
// old or new data elsewhere, and every snapshot as it was taken.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "base/sys.h"
#include "base/try.h"
#include "pool_test_support.h"
#include "pool_workload.h"
#include "storage/pool/file_member_disk.h"

extern char** environ;

namespace kasou::storage {
namespace {

constexpr int KILLS = 48;
constexpr u64 VOLUME_SIZE = 2 * MiB;

struct Progress {
    long long begun { -1 };
    long long committed { -1 };
    bool ready { false };
    std::string partial;

    void feed(std::string_view text)
    {
        partial += text;
        for (size_t newline; (newline = partial.find('\n')) != std::string::npos; partial.erase(0, newline + 1)) {
            std::string line = partial.substr(0, newline);
            if (line == "R")
                ready = true;
            else if (line.starts_with("B "))
                begun = std::stoll(line.substr(2));
            else if (line.starts_with("C "))
                committed = std::stoll(line.substr(2));
        }
    }
};

std::vector<std::unique_ptr<MemberDisk>> open_files(std::vector<std::string> const& paths)
{
    std::vector<std::unique_ptr<MemberDisk>> disks;
    for (auto const& path : paths)
        disks.push_back(MUST(FileMemberDisk::open(path)));
    return disks;
}

void kill_once(std::string const& dir, u64 seed)
{
    std::mt19937_64 random(seed);
    std::vector<std::string> paths { dir + "/d0", dir + "/d1" };
    for (auto const& path : paths) {
        Fd fd = MUST(sys::open(path, O_RDWR | O_CREAT | O_TRUNC, 0644));
        // Room for every chunk of the volume and of a few dozen snapshots: the worker must never
        // meet ENOSPC, which would make the replay diverge.
        MUST(sys::ftruncate(fd.get(), 40 * MiB));
    }
    {
        auto pool = MUST(ThinPool::create("killed", seed % 2 ? SegmentKind::Striped : SegmentKind::Mirror, 16 * KiB, open_files(paths), false));
        MUST(pool->create_volume("a", VOLUME_SIZE));
        MUST(pool->close());
    }

    int fds[2];
    MUST(sys::pipe(fds, O_NONBLOCK));
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    std::string seed_text = std::to_string(seed);
    std::vector<char*> argv { const_cast<char*>(POOL_CRASH_WORKER), paths[0].data(), paths[1].data(), seed_text.data(), nullptr };
    pid_t child = -1;
    ASSERT_EQ(posix_spawn(&child, POOL_CRASH_WORKER, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    write_end.reset();

    Progress progress;
    auto drain = [&] {
        char buffer[4096];
        for (;;) {
            auto n = sys::read(read_end.get(), buffer, sizeof(buffer));
            if (!n || *n == 0)
                return;
            progress.feed(std::string_view(buffer, *n));
        }
    };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!progress.ready && std::chrono::steady_clock::now() < deadline) {
        drain();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(progress.ready) << "the worker did not start";
    auto kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(1 + random() % 60);
    while (std::chrono::steady_clock::now() < kill_at) {
        drain();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    drain();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the worker ended before it was killed (status " << status << ")";

    // Replay: operations up to the last committed one are durable, those begun after may be.
    auto ops = test::make_workload(seed, VOLUME_SIZE, static_cast<size_t>(progress.begun + 1));
    test::VolumeModel model(VOLUME_SIZE);
    std::map<std::string, std::vector<u8>> snapshots;
    std::set<std::string> required;
    for (long long k = 0; k <= progress.begun; ++k) {
        auto const& op = ops[static_cast<size_t>(k)];
        switch (op.kind) {
        case test::OpKind::Write:
        case test::OpKind::FuaWrite:
            model.write(op.offset, test::op_data(op));
            break;
        case test::OpKind::Discard:
        case test::OpKind::WriteZeroes:
            model.write(op.offset, std::vector<u8>(op.length, 0));
            break;
        case test::OpKind::Flush:
            break;
        case test::OpKind::Snapshot:
            snapshots[op.name] = model.current();
            if (k <= progress.committed)
                required.insert(op.name);
            break;
        }
        if (k == progress.committed)
            model.commit();
    }

    auto pool = ThinPool::open(open_files(paths));
    ASSERT_TRUE(pool) << pool.error().to_string();
    auto faults = (*pool)->check();
    EXPECT_TRUE(faults.empty()) << test::describe(faults);
    auto volume = MUST((*pool)->open_volume("a"));
    std::vector<u8> actual(VOLUME_SIZE);
    ASSERT_OK(volume->read(0, actual));
    auto bad = model.first_bad_sector(actual);
    EXPECT_EQ(bad, -1) << "seed " << seed << ": sector " << bad << " holds neither committed nor later data (committed op "
                       << progress.committed << ", begun " << progress.begun << ")";
    for (auto const& info : (*pool)->volumes()) {
        if (info.name == "a")
            continue;
        ASSERT_TRUE(snapshots.contains(info.name)) << "unexpected volume " << info.name;
        std::vector<u8> content(info.size);
        ASSERT_OK(MUST((*pool)->open_volume(info.name))->read(0, content));
        EXPECT_TRUE(content == snapshots[info.name]) << "snapshot " << info.name << " differs from the volume when it was taken";
        required.erase(info.name);
    }
    EXPECT_TRUE(required.empty()) << "a committed snapshot is missing, e.g. " << (required.empty() ? "" : *required.begin());
    MUST((*pool)->close());
}

TEST(PoolKill, KilledProcessLeavesAConsistentPool)
{
    std::string dir = MUST(sys::make_temp_dir("/tmp/kasou-pool-kill-XXXXXX"));
    for (int i = 0; i < KILLS && !HasFatalFailure() && !HasNonfatalFailure(); ++i)
        kill_once(dir, 500 + static_cast<u64>(i));
    std::filesystem::remove_all(dir);
}

} // namespace
} // namespace kasou::storage
