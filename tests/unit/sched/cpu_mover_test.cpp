#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "base/sys_path.h"
#include "base/try.h"
#include "sched/cpu_mover.h"

namespace fs = std::filesystem;
using namespace kasou::sched;
using kasou::u32;

namespace {

std::string slurp(fs::path const& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

struct TempDir {
    TempDir()
        : path(MUST(kasou::sys::make_temp_dir((fs::temp_directory_path() / "kasou-cgroup-XXXXXX").string())))
    {
    }
    ~TempDir() { fs::remove_all(path); }
    fs::path path;
};

} // namespace

TEST(AffinityMover, MovesARealThread)
{
    auto original = MUST(thread_affinity(0));
    if (original.count() < 2)
        GTEST_SKIP() << "needs two CPUs";
    auto cpus = original.to_vector();
    pid_t tid = gettid();
    AffinityMover mover({ tid });
    ASSERT_TRUE(mover.apply(GroupPlacement { CpuSet::of({ cpus[1] }), {} }));
    EXPECT_EQ(MUST(thread_affinity(tid)), CpuSet::of({ cpus[1] }));
    EXPECT_EQ(u32(sched_getcpu()), cpus[1]);
    ASSERT_TRUE(mover.apply(GroupPlacement { original, {} }));
    EXPECT_EQ(MUST(thread_affinity(tid)), original);
    EXPECT_FALSE(set_thread_affinity(tid, CpuSet()));
}

TEST(CgroupCpusetMover, WritesCgroupV1Files)
{
    TempDir root; // laid out like /sys/fs/cgroup/cpuset/kasou/ct1
    fs::path group = root.path / "kasou/ct1";
    fs::create_directories(group);
    for (auto name : { "cpuset.cpus", "cpuset.mems", "tasks", "cpuset.cpu_exclusive" })
        std::ofstream(group / name) << "";
    CgroupCpusetMover mover(group.string());
    ASSERT_TRUE(mover.apply(GroupPlacement { CpuSet::of({ 2, 3, 5 }), { 0, 1 } }));
    EXPECT_EQ(slurp(group / "cpuset.cpus"), "2-3,5");
    EXPECT_EQ(slurp(group / "cpuset.mems"), "0-1");
    // One node: memory placement is left alone.
    std::ofstream(group / "cpuset.mems") << "0";
    ASSERT_TRUE(mover.apply(GroupPlacement { CpuSet::of({ 4 }), {} }));
    EXPECT_EQ(slurp(group / "cpuset.cpus"), "4");
    EXPECT_EQ(slurp(group / "cpuset.mems"), "0");
}

TEST(CgroupCpusetMover, EnablesTheControllerOnCgroupV2)
{
    TempDir root; // laid out like /sys/fs/cgroup/kasou.slice/ct1
    fs::path parent = root.path / "kasou.slice";
    fs::path group = parent / "ct1";
    fs::create_directories(group);
    std::ofstream(parent / "cgroup.subtree_control") << "memory pids\n";
    std::ofstream(group / "cgroup.controllers") << "cpuset memory pids\n";
    std::ofstream(group / "cpuset.cpus") << "";
    std::ofstream(group / "cpuset.mems") << "";
    CgroupCpusetMover mover(group.string());
    ASSERT_TRUE(mover.apply(GroupPlacement { CpuSet::of({ 0, 1 }), { 1 } }));
    EXPECT_EQ(slurp(parent / "cgroup.subtree_control"), "+cpuset");
    EXPECT_EQ(slurp(group / "cpuset.cpus"), "0-1");
    EXPECT_EQ(slurp(group / "cpuset.mems"), "1");

    CgroupCpusetMover missing((root.path / "absent").string());
    auto result = missing.apply(GroupPlacement { CpuSet::of({ 0 }), {} });
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("no such cgroup"), std::string::npos);
}

TEST(CgroupCpusetMover, NewCgroupInheritsTheParentsMemoryNodes)
{
    TempDir root;
    fs::path group = root.path / "ct1";
    fs::create_directories(group);
    std::ofstream(root.path / "cpuset.mems") << "0-1\n";
    std::ofstream(group / "cpuset.mems") << "\n";
    std::ofstream(group / "cpuset.cpus") << "";
    ASSERT_TRUE(CgroupCpusetMover(group.string()).apply(GroupPlacement { CpuSet::of({ 1 }), {} }));
    EXPECT_EQ(slurp(group / "cpuset.mems"), "0-1\n");
    EXPECT_EQ(slurp(group / "cpuset.cpus"), "1");
}

// The real cpuset hierarchy of this host (cgroup v1, see PLATFORM.md): a new cgroup, a thread moved
// into it, the mover narrows it to one CPU and the kernel applies that to the thread's affinity.
TEST(CgroupCpusetMover, MovesAThreadThroughARealCgroupV1Cpuset)
{
    fs::path hierarchy = "/sys/fs/cgroup/cpuset";
    std::error_code error;
    if (!fs::exists(hierarchy / "cpuset.cpus", error) || access(hierarchy.c_str(), W_OK) != 0)
        GTEST_SKIP() << "no writable cgroup v1 cpuset hierarchy";
    auto online = MUST(thread_affinity(0));
    if (online.count() < 2)
        GTEST_SKIP() << "needs two CPUs";
    fs::path group = hierarchy / ("kasou-unit-" + std::to_string(getpid()));
    if (!fs::create_directory(group, error))
        GTEST_SKIP() << "cannot create a cpuset cgroup: " << error.message();
    u32 target = online.to_vector()[1];
    CgroupCpusetMover mover(group.string());
    auto applied = mover.apply(GroupPlacement { online, {} });
    EXPECT_TRUE(applied) << applied.error().to_string();
    std::ofstream(group / "tasks") << gettid() << std::endl;
    applied = mover.apply(GroupPlacement { CpuSet::of({ target }), {} });
    EXPECT_TRUE(applied) << applied.error().to_string();
    EXPECT_EQ(MUST(thread_affinity(0)), CpuSet::of({ target }));
    EXPECT_EQ(u32(sched_getcpu()), target);
    // Back to the root cpuset, restore the affinity, remove the cgroup.
    std::ofstream(hierarchy / "tasks") << gettid() << std::endl;
    ASSERT_TRUE(set_thread_affinity(0, online));
    fs::remove(group, error);
    EXPECT_FALSE(error) << error.message();
}
