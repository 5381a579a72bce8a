#include <gtest/gtest.h>

#include <set>

#include "base/try.h"
#include "sched/core_allocator.h"
#include "shipped_topologies.h"

using namespace kasou::sched;
using kasou::u32;
using namespace kasou::sched::testing;

namespace {

std::set<u32> llcs_of(Topology const& topology, std::vector<u32> const& cpus)
{
    std::set<u32> llcs;
    for (u32 cpu : cpus)
        llcs.insert(topology.cpu(cpu).llc);
    return llcs;
}

std::set<u32> nodes_of(Topology const& topology, std::vector<u32> const& cpus)
{
    std::set<u32> nodes;
    for (u32 cpu : cpus)
        nodes.insert(topology.cpu(cpu).node);
    return nodes;
}

GroupRequest dedicated(u32 vcpus, bool smt = true) { return GroupRequest { vcpus, Sharing::Dedicated, smt }; }

} // namespace

TEST(CoreAllocator, KasouKeepsAGroupInOneCacheDomainAndFillsTheTightestFirst)
{
    auto const& topology = shipped("64amd64-4s2n4ca2co"); // 8 LLC domains of 8 cores
    CoreAllocator allocator(topology, {});
    u32 six = MUST(allocator.allocate(dedicated(6)));
    EXPECT_EQ(llcs_of(topology, allocator.group(six)->cpus).size(), 1u);
    u32 eight = MUST(allocator.allocate(dedicated(8)));
    EXPECT_EQ(llcs_of(topology, allocator.group(eight)->cpus).size(), 1u);
    EXPECT_NE(*llcs_of(topology, allocator.group(eight)->cpus).begin(), *llcs_of(topology, allocator.group(six)->cpus).begin());
    // Two vCPUs fit in the two cores left next to the first group: best fit goes there.
    u32 two = MUST(allocator.allocate(dedicated(2)));
    EXPECT_EQ(llcs_of(topology, allocator.group(two)->cpus), llcs_of(topology, allocator.group(six)->cpus));
    EXPECT_EQ(allocator.free_cores(), 64u - 16u);
}

TEST(CoreAllocator, KasouSpansOneNodeThenTheNearestNodes)
{
    auto const& topology = shipped("96em64t-4no4pa3ca2co"); // nodes of 24 cores, LLCs of 6
    CoreAllocator allocator(topology, {});
    u32 twelve = MUST(allocator.allocate(dedicated(12)));
    EXPECT_EQ(llcs_of(topology, allocator.group(twelve)->cpus).size(), 2u);
    EXPECT_EQ(nodes_of(topology, allocator.group(twelve)->cpus).size(), 1u);

    auto const& sparse = shipped("48amd64-4pa2n6c-sparse"); // nodes of 6 cores at distance 16 or 22
    CoreAllocator spanning(sparse, {});
    u32 group = MUST(spanning.allocate(dedicated(12)));
    auto nodes = nodes_of(sparse, spanning.group(group)->cpus);
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(sparse.distance(*nodes.begin(), *nodes.rbegin()), 16u);
}

TEST(CoreAllocator, DedicatedGroupsNeverShareSmtSiblings)
{
    auto const& topology = shipped("32intel64-2p8co2t+8ve"); // 16 cores of 2 threads
    CoreAllocator allocator(topology, {});
    u32 one = MUST(allocator.allocate(dedicated(1)));
    u32 three = MUST(allocator.allocate(dedicated(3)));
    u32 no_smt = MUST(allocator.allocate(dedicated(4, false)));
    std::map<u32, u32> owner_of_core;
    for (u32 id : { one, three, no_smt }) {
        for (u32 cpu : allocator.group(id)->held.to_vector()) {
            auto [it, inserted] = owner_of_core.try_emplace(topology.cpu(cpu).core, id);
            EXPECT_EQ(it->second, id) << "core " << it->first << " held by two groups";
        }
    }
    // Without SMT every vCPU has a core of its own, and the guest sees one thread per core.
    auto const& cpus = allocator.group(no_smt)->cpus;
    EXPECT_EQ(cpus.size(), 4u);
    std::set<u32> cores;
    for (u32 cpu : cpus)
        cores.insert(topology.cpu(cpu).core);
    EXPECT_EQ(cores.size(), 4u);
    EXPECT_EQ(allocator.guest_topology(no_smt).threads_per_core, 1u);
    // With SMT, vCPUs 0 and 1 are the two threads of one core, and the guest is told so.
    u32 pair = MUST(allocator.allocate(dedicated(4)));
    auto const& paired = allocator.group(pair)->cpus;
    EXPECT_EQ(topology.cpu(paired[0]).core, topology.cpu(paired[1]).core);
    auto guest = allocator.guest_topology(pair);
    EXPECT_EQ(guest.threads_per_core, 2u);
    EXPECT_EQ(guest.cores_per_package, 2u);
}

TEST(CoreAllocator, HousekeepingCoresStayWithTheHost)
{
    auto const& topology = shipped("16em64t-4s2c2t");
    CoreAllocator allocator(topology, AllocatorOptions { PlacementPolicy::FirstFit, 2 });
    EXPECT_EQ(allocator.free_cores(), 6u);
    u32 id = MUST(allocator.allocate(dedicated(2, false)));
    for (u32 cpu : allocator.group(id)->cpus)
        EXPECT_GE(topology.cpu(cpu).core, 2u);
    auto exact = allocator.allocate_exact(topology.cores()[0].cpus);
    ASSERT_FALSE(exact);
    EXPECT_NE(exact.error().to_string().find("kept for the host"), std::string::npos);
    EXPECT_FALSE(allocator.allocate(dedicated(7, false))); // only 4 cores left
}

TEST(CoreAllocator, ExactListsAreCheckedAndReleaseFreesCores)
{
    auto const& topology = shipped("16em64t-4s2c2t"); // CPUs 1 and 9 are siblings
    CoreAllocator allocator(topology, {});
    u32 id = MUST(allocator.allocate_exact(CpuSet::of({ 1, 9 })));
    EXPECT_EQ(allocator.group(id)->cpus, (std::vector<u32> { 1, 9 }));
    EXPECT_EQ(allocator.guest_topology(id).threads_per_core, 2u);
    auto taken = allocator.allocate_exact(CpuSet::of({ 9 }));
    ASSERT_FALSE(taken);
    EXPECT_NE(taken.error().to_string().find("used by another group"), std::string::npos);
    auto offline = allocator.allocate_exact(CpuSet::of({ 40 }));
    ASSERT_FALSE(offline);
    EXPECT_NE(offline.error().to_string().find("not online"), std::string::npos);
    EXPECT_FALSE(allocator.allocate(dedicated(0)));
    allocator.release(id);
    EXPECT_EQ(allocator.free_cores(), 8u);
    EXPECT_TRUE(allocator.allocate_exact(CpuSet::of({ 9 })));
}

TEST(CoreAllocator, ResizeGrowsNearAndShrinksFromTheEdge)
{
    auto const& topology = shipped("64amd64-4s2n4ca2co");
    CoreAllocator allocator(topology, {});
    u32 id = MUST(allocator.allocate(dedicated(4)));
    auto before = allocator.group(id)->cpus;
    EXPECT_EQ(MUST(allocator.resize(id, 6)), 0u); // grows in place: nobody moves
    auto grown = allocator.group(id)->cpus;
    ASSERT_EQ(grown.size(), 6u);
    EXPECT_TRUE(std::equal(before.begin(), before.end(), grown.begin()));
    EXPECT_EQ(llcs_of(topology, grown).size(), 1u);
    EXPECT_EQ(MUST(allocator.resize(id, 3)), 0u);
    EXPECT_EQ(allocator.group(id)->cpus.size(), 3u);
    EXPECT_EQ(allocator.free_cores(), 61u);

    // A neighbour fills the rest of the domain; growing past it moves the group to an empty domain.
    u32 neighbour = MUST(allocator.allocate(dedicated(5)));
    EXPECT_EQ(llcs_of(topology, allocator.group(neighbour)->cpus), llcs_of(topology, allocator.group(id)->cpus));
    u32 moved = MUST(allocator.resize(id, 8));
    EXPECT_EQ(moved, 3u);
    EXPECT_EQ(llcs_of(topology, allocator.group(id)->cpus).size(), 1u);
}

TEST(CoreAllocator, SharedGroupsOverlapButNeverTouchDedicatedCores)
{
    auto const& topology = shipped("16em64t-4s2c2t");
    CoreAllocator allocator(topology, {});
    GroupRequest shared { 4, Sharing::Shared, true };
    std::vector<u32> shared_groups;
    for (int i = 0; i < 5; ++i)
        shared_groups.push_back(MUST(allocator.allocate(shared)));
    CpuSet shared_cpus;
    for (u32 id : shared_groups)
        shared_cpus = shared_cpus | allocator.group(id)->held;
    // Five groups of four on eight cores: they must overlap, and spread over the least used.
    EXPECT_EQ(shared_cpus, topology.online());
    auto dedicated_group = allocator.allocate(dedicated(1));
    EXPECT_FALSE(dedicated_group); // every core is in shared use
    for (u32 id : shared_groups)
        allocator.release(id);
    EXPECT_EQ(allocator.free_cores(), 8u);
    EXPECT_TRUE(allocator.allocate(dedicated(8)));
}

TEST(CoreAllocator, BaselinePoliciesPlaceAsDocumented)
{
    auto const& topology = shipped("40intel64-4n10c+pci-conflicts"); // package p holds CPUs p, p+4, ...
    CoreAllocator first_fit(topology, AllocatorOptions { PlacementPolicy::FirstFit, 0 });
    EXPECT_EQ(first_fit.group(MUST(first_fit.allocate(dedicated(4))))->cpus, (std::vector<u32> { 0, 1, 2, 3 }));

    auto const& packages = shipped("16em64t-4s2c2t");
    CoreAllocator spread(packages, AllocatorOptions { PlacementPolicy::Spread, 0 });
    auto spread_cpus = spread.group(MUST(spread.allocate(dedicated(4, false))))->cpus;
    std::set<u32> spread_packages;
    for (u32 cpu : spread_cpus)
        spread_packages.insert(packages.cpu(cpu).package);
    EXPECT_EQ(spread_packages.size(), 4u);

    CoreAllocator packed(packages, AllocatorOptions { PlacementPolicy::Packed, 0 });
    u32 first = MUST(packed.allocate(dedicated(1, false)));
    u32 second = MUST(packed.allocate(dedicated(1, false)));
    // The second group goes to the fullest package, the one the first group started.
    EXPECT_EQ(packages.cpu(packed.group(first)->cpus[0]).package, packages.cpu(packed.group(second)->cpus[0]).package);
    EXPECT_FALSE(parse_policy("best"));
    EXPECT_EQ(MUST(parse_policy("packed")), PlacementPolicy::Packed);
}
