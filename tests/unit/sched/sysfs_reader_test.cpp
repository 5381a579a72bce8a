#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/sys_path.h"
#include "base/sys_process.h"
#include "base/try.h"
#include "sched/sysfs_reader.h"
#include "sched/sysfs_source.h"

namespace fs = std::filesystem;
using namespace kasou::sched;
using kasou::u32;

namespace {

// A sysfs tree written by hand into a temporary directory: root/sys/devices/system/...
class FakeSysfs {
public:
    FakeSysfs()
        : m_root(MUST(kasou::sys::make_temp_dir((fs::temp_directory_path() / "kasou-fake-sysfs-XXXXXX").string())))
    {
    }
    ~FakeSysfs() { fs::remove_all(m_root); }
    void write(std::string const& relative, std::string const& text)
    {
        fs::path path = fs::path(m_root) / "sys/devices/system" / relative;
        fs::create_directories(path.parent_path());
        std::ofstream(path) << text;
    }
    std::string root() const { return m_root; }
    std::string sys() const { return m_root + "/sys"; }

private:
    std::string m_root;
};

// Three online CPUs on one package: 0 and 1 are SMT siblings (mask files only), 2 is alone and
// isolated, 3 is present but offline. No cache information, no NUMA directory.
void write_small_machine(FakeSysfs& tree)
{
    tree.write("cpu/online", "0-2\n");
    tree.write("cpu/isolated", "2\n");
    tree.write("cpu/cpu3/online", "0\n");
    for (int cpu = 0; cpu < 3; ++cpu) {
        std::string topo = "cpu/cpu" + std::to_string(cpu) + "/topology/";
        tree.write(topo + "physical_package_id", "0\n");
        tree.write(topo + "core_id", cpu < 2 ? "0\n" : "1\n");
        tree.write(topo + "thread_siblings", cpu < 2 ? "00000003\n" : "00000004\n");
        tree.write(topo + "core_siblings", "00000007\n");
    }
}

} // namespace

TEST(SysfsReader, ReadsOfflineIsolatedAndMaskOnlyTreeWithoutCaches)
{
    FakeSysfs tree;
    write_small_machine(tree);
    auto topology = read_topology(tree.sys());
    ASSERT_TRUE(topology) << topology.error().to_string();
    EXPECT_EQ(topology->cpus().size(), 3u);
    EXPECT_EQ(topology->cores().size(), 2u);
    EXPECT_EQ(topology->packages().size(), 1u);
    EXPECT_EQ(topology->numa_nodes().size(), 1u);
    ASSERT_EQ(topology->llc_domains().size(), 1u);
    EXPECT_EQ(topology->llc_domains()[0].level, 0u); // the package stands in for the cache
    EXPECT_FALSE(topology->has_cache_info());
    EXPECT_EQ(topology->offline().to_list(), "3");
    EXPECT_EQ(topology->isolated().to_list(), "2");
    EXPECT_EQ(topology->cores()[0].threads, (std::vector<u32> { 0, 1 }));
    EXPECT_EQ(topology->max_threads_per_core(), 2u);
    EXPECT_EQ(topology->cpu(1).thread, 1u);
}

TEST(SysfsReader, PicksHighestDataOrUnifiedCacheAndSparseNodes)
{
    FakeSysfs tree;
    tree.write("cpu/online", "0-3\n");
    for (int cpu = 0; cpu < 4; ++cpu) {
        std::string dir = "cpu/cpu" + std::to_string(cpu) + "/";
        tree.write(dir + "topology/physical_package_id", "0\n");
        tree.write(dir + "topology/thread_siblings_list", std::to_string(cpu) + "\n");
        tree.write(dir + "cache/index0/level", "1\n");
        tree.write(dir + "cache/index0/type", "Data\n");
        tree.write(dir + "cache/index0/shared_cpu_list", std::to_string(cpu) + "\n");
        // An instruction cache at a higher level must not count as the last-level cache.
        tree.write(dir + "cache/index1/level", "3\n");
        tree.write(dir + "cache/index1/type", "Instruction\n");
        tree.write(dir + "cache/index1/shared_cpu_list", "0-3\n");
        tree.write(dir + "cache/index2/level", "2\n");
        tree.write(dir + "cache/index2/type", "Unified\n");
        tree.write(dir + "cache/index2/shared_cpu_list", cpu < 2 ? "0-1\n" : "2-3\n");
    }
    tree.write("node/online", "0,5\n");
    tree.write("node/node0/cpulist", "0-1\n");
    tree.write("node/node0/distance", "10 21\n");
    tree.write("node/node5/cpulist", "2-3\n");
    tree.write("node/node5/distance", "21 10\n");
    tree.write("node/node7/cpulist", "\n"); // not online: ignored
    auto topology = read_topology(tree.sys());
    ASSERT_TRUE(topology) << topology.error().to_string();
    ASSERT_EQ(topology->llc_domains().size(), 2u);
    EXPECT_EQ(topology->llc_domains()[1].cpus.to_list(), "2-3");
    EXPECT_EQ(topology->llc_domains()[1].level, 2u);
    ASSERT_EQ(topology->numa_nodes().size(), 2u);
    EXPECT_EQ(topology->numa_nodes()[1].os_id, 5u);
    EXPECT_EQ(topology->distance(0, 1), 21u);
    EXPECT_EQ(topology->cpu(3).node, 1u);
}

TEST(SysfsReader, AcceptsRootSysAndArchive)
{
    FakeSysfs tree;
    write_small_machine(tree);
    EXPECT_EQ(MUST(locate_sys_dir(tree.root())), tree.sys());
    EXPECT_EQ(MUST(locate_sys_dir(tree.sys())), tree.sys());
    // An archive whose single top directory holds sys/, as the captured trees are packed.
    std::string archive = tree.root() + ".tar.bz2";
    ASSERT_EQ(MUST(kasou::sys::spawn_and_wait({ "tar", "-cjf", archive, "-C", fs::path(tree.root()).parent_path().string(),
                  fs::path(tree.root()).filename().string() })),
        0);
    std::string extracted;
    {
        auto source = SysfsSource::open(archive);
        ASSERT_TRUE(source) << source.error().to_string();
        extracted = source->sys_dir();
        auto topology = source->read();
        ASSERT_TRUE(topology) << topology.error().to_string();
        EXPECT_EQ(topology->cpus().size(), 3u);
    }
    EXPECT_FALSE(fs::exists(extracted)); // the temporary tree is gone with its source
    fs::remove(archive);
}

TEST(SysfsReader, ReportsBadInputByName)
{
    FakeSysfs tree;
    write_small_machine(tree);
    tree.write("cpu/online", "0-x\n");
    auto broken = read_topology(tree.sys());
    ASSERT_FALSE(broken);
    EXPECT_NE(broken.error().to_string().find("cpu/online"), std::string::npos) << broken.error().to_string();

    auto missing = load_topology(tree.root() + "/nowhere");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().to_string().find("no such file"), std::string::npos);

    FakeSysfs empty;
    empty.write("other/file", "1\n");
    auto not_sysfs = load_topology(empty.root() + "/sys/devices/system/other");
    ASSERT_FALSE(not_sysfs);
    EXPECT_NE(not_sysfs.error().to_string().find("not a sysfs tree"), std::string::npos) << not_sysfs.error().to_string();
}

TEST(SysfsReader, ReadsTheLiveHost)
{
    auto topology = load_topology("");
    ASSERT_TRUE(topology) << topology.error().to_string();
    EXPECT_EQ(topology->cpus().size(), u32(sysconf(_SC_NPROCESSORS_ONLN)));
}
