#include <gtest/gtest.h>

#include <map>

#include "sched/topology_report.h"
#include "shipped_topologies.h"

using namespace kasou::sched;
using kasou::u32;
using namespace kasou::sched::testing;

namespace {

struct Counts {
    u32 packages;
    u32 numa_nodes;
    u32 llc_domains;
    u32 cores;
    u32 threads;
};

// Expected figures, read from each unpacked tree with cat and sort (not with kasou):
// packages from cpu*/topology/physical_package_id (or package/core sibling lists when it is -1),
// NUMA nodes from node/online or the nodeN directories, LLC domains from the highest-level
// non-instruction cache/index*/shared_cpu_{list,map} of each CPU, cores from thread_siblings(_list)
// together with core_id, threads from cpu/online (or the cpuN directories when it is absent).
std::map<std::string, Counts> const EXPECTED = {
    // physical_package_id 36 (CPUs 0-63) and 8442 (64-127); node/online 0-3; L3 (index3) 0-31, 32-63,
    // 64-95, 96-127; every thread_siblings_list holds one CPU; cpu/online 0-127.
    { "128arm-2pa2n8cluster4co", { 2, 4, 4, 128, 128 } },
    // physical_package_id 0-7, two CPUs each; node/online 0-7; highest cache is L2 (index2) with
    // shared_cpu_list = the CPU itself; one thread per core; cpu/online 0-15.
    { "16amd64-8n2c", { 8, 8, 16, 16, 16 } },
    // physical_package_id 0-3; node0 only; L3 shared_cpu_map 00001111, 00002222, 00004444, 00008888;
    // thread_siblings masks 0101, 0202, ... 8080 (8 cores of 2 threads); 16 cpuN directories, no online file.
    { "16em64t-4s2c2t", { 4, 1, 4, 8, 16 } },
    // physical_package_id 0; node/online 0; L3 0-19; thread_siblings_list 0-1 ... 10-11 (6 P-cores with
    // two threads) and 12 ... 19 alone (8 E-cores); cpu/online 0-19.
    { "20em64t-hybrid-1p6c2t+2ca4co1t", { 1, 1, 1, 14, 20 } },
    // physical_package_id -1 everywhere and core_siblings_list = thread_siblings_list = 4 CPUs (0-3, 4-7,
    // ...), so 64 packages; nodes 0,1,4,5,8,9,12,13 (32 CPUs each by cpumap); L3 shared_cpu_map = the
    // core's 4 threads; 256 cpuN directories, no online file.
    { "256ppc-8n8s4t", { 64, 8, 64, 64, 256 } },
    // physical_package_id 0-3; node/online 0-7 (4 CPUs each); L3 0-3, 4-7, ...; one thread per core;
    // cpu/online 0-31 (possible 0-47 but 32-47 have no directory).
    { "32amd64-4s2n4c-cgroup2", { 4, 8, 8, 32, 32 } },
    // physical_package_id 0 and 1; node/online 0-1; L3 0-7,16-23 and 8-15,24-31; thread_siblings_list
    // 0,16 ... 15,31 (16 cores); cpu/online 0-31.
    { "32intel64-2p8co2t+8ve", { 2, 2, 2, 16, 32 } },
    // physical_package_id 0-3 (CPU 3's core_siblings mask is corrupt, 0000000f, its list is right);
    // node/online 0-3; L3 0,4,...,36 and the like; one thread per core; cpu/online 0-39.
    { "40intel64-4n10c+pci-conflicts", { 4, 4, 4, 40, 40 } },
    // physical_package_id 0-3; node/online 0-2,33-34,45,72-73; L3 0-5, 6-11, ...; one thread per core;
    // cpu/online 0-47.
    { "48amd64-4pa2n6c-sparse", { 4, 8, 8, 48, 48 } },
    // physical_package_id 0-3; node/online 0-7; L3 0-7, 8-15, ...; thread_siblings_list 0-1, 2-3, ...
    // but core_id differs within each pair (AMD family 21 compute units: two cores each); cpu/online 0-63.
    { "64amd64-4s2n4ca2co", { 4, 8, 8, 64, 64 } },
    // physical_package_id 0 (CPUs 0,2,4,6) and 1; node/online 0; CPUs 0 and 4 export only L1
    // (index0/1, their own), the others an L2 shared by 1,5 / 2,6 / 3,7: five domains; cpu/online 0-7.
    { "8em64t-2s4c-asymcaches", { 2, 1, 5, 8, 8 } },
    // physical_package_id 0-15, six CPUs each; nodes 0-3 (24 CPUs each by cpumap); L3 shared_cpu_map =
    // the package's six CPUs; thread_siblings = the CPU itself; 96 cpuN directories, no online file.
    { "96em64t-4no4pa3ca2co", { 16, 4, 16, 96, 96 } },
};

} // namespace

TEST(ShippedTopologies, EveryArchiveHasExpectedCounts)
{
    auto names = shipped_names();
    ASSERT_GE(names.size(), EXPECTED.size());
    for (auto const& name : names) {
        SCOPED_TRACE(name);
        auto expected = EXPECTED.find(name);
        ASSERT_NE(expected, EXPECTED.end()) << "a new archive needs its counts written down here";
        auto json = topology_to_json(shipped(name));
        EXPECT_EQ(json["packages"], expected->second.packages);
        EXPECT_EQ(json["numa_nodes"], expected->second.numa_nodes);
        EXPECT_EQ(json["llc_domains"], expected->second.llc_domains);
        EXPECT_EQ(json["cores"], expected->second.cores);
        EXPECT_EQ(json["threads"], expected->second.threads);
    }
}

TEST(ShippedTopologies, ObjectsPartitionTheOnlineCpus)
{
    for (auto const& name : shipped_names()) {
        SCOPED_TRACE(name);
        auto const& topology = shipped(name);
        CpuSet cores;
        u32 core_threads = 0;
        for (auto const& core : topology.cores()) {
            EXPECT_FALSE(cores.intersects(core.cpus));
            cores = cores | core.cpus;
            core_threads += u32(core.threads.size());
            // A core never straddles a package or a cache domain.
            for (u32 cpu : core.threads) {
                EXPECT_EQ(topology.cpu(cpu).package, core.package);
                EXPECT_EQ(topology.cpu(cpu).llc, core.llc);
            }
        }
        EXPECT_EQ(cores, topology.online());
        EXPECT_EQ(core_threads, topology.cpus().size());
        CpuSet llcs;
        for (auto const& llc : topology.llc_domains()) {
            EXPECT_FALSE(llcs.intersects(llc.cpus));
            llcs = llcs | llc.cpus;
        }
        EXPECT_EQ(llcs, topology.online());
        for (u32 a = 0; a < topology.numa_nodes().size(); ++a)
            EXPECT_LT(topology.distance(a, a), topology.numa_nodes().size() > 1 ? topology.distance(a, (a + 1) % topology.numa_nodes().size()) : 1000u);
    }
}

TEST(ShippedTopologies, DistancesFollowNodeOrder)
{
    // 48amd64-4pa2n6c-sparse: node2's distance row is "16 22 10 16 16 16 16 16", so node2 (index 2)
    // to node33 (index 3) is 16 and node0 to node33 is 22.
    auto const& topology = shipped("48amd64-4pa2n6c-sparse");
    ASSERT_EQ(topology.numa_nodes()[3].os_id, 33u);
    EXPECT_EQ(topology.distance(2, 3), 16u);
    EXPECT_EQ(topology.distance(0, 3), 22u);
    EXPECT_EQ(topology.numa_nodes()[7].cpus.to_list(), "42-47");
}
