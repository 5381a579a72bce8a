#include <gtest/gtest.h>

#include "sched/simulator.h"
#include "shipped_topologies.h"

using namespace kasou::sched;
using kasou::u32;
using namespace kasou::sched::testing;

namespace {

constexpr u32 EVENTS = 1500;

SimulationResult run(Topology const& topology, PlacementPolicy policy, u32 seed)
{
    return simulate(topology, SimulationOptions { policy, seed, EVENTS });
}

} // namespace

TEST(Simulator, KasouIsNeverWorseThanFirstFitOrSpreadAndBetterOverall)
{
    double kasou_llc = 0, kasou_cost = 0, baseline_llc = 0, baseline_cost = 0;
    u32 topologies = 0;
    for (auto const& name : shipped_names()) {
        auto const& topology = shipped(name);
        if (topology.llc_domains().size() < 2)
            continue;
        ++topologies;
        for (u32 seed : { 1u, 2u, 3u }) {
            SCOPED_TRACE(name + " seed " + std::to_string(seed));
            auto kasou = run(topology, PlacementPolicy::Kasou, seed);
            EXPECT_GT(kasou.placed, 0u);
            for (auto policy : { PlacementPolicy::FirstFit, PlacementPolicy::Spread }) {
                SCOPED_TRACE(policy_name(policy));
                auto other = run(topology, policy, seed);
                EXPECT_LE(kasou.cross_llc_share, other.cross_llc_share + 1e-12);
                EXPECT_LE(kasou.coherence_cost, other.coherence_cost + 1e-9);
                baseline_llc += other.cross_llc_share;
                baseline_cost += other.coherence_cost;
            }
            kasou_llc += 2 * kasou.cross_llc_share;
            kasou_cost += 2 * kasou.coherence_cost;
        }
    }
    EXPECT_GE(topologies, 10u);
    EXPECT_LT(kasou_llc, baseline_llc);
    EXPECT_LT(kasou_cost, baseline_cost);
}

TEST(Simulator, SameSeedSameReplayOtherSeedOtherReplay)
{
    auto const& topology = shipped("32amd64-4s2n4c-cgroup2");
    auto a = run(topology, PlacementPolicy::FirstFit, 7);
    auto b = run(topology, PlacementPolicy::FirstFit, 7);
    auto c = run(topology, PlacementPolicy::FirstFit, 8);
    EXPECT_EQ(a.requests, b.requests);
    EXPECT_EQ(a.cross_llc_share, b.cross_llc_share);
    EXPECT_EQ(a.coherence_cost, b.coherence_cost);
    EXPECT_NE(a.requests * 1000 + a.rejected, c.requests * 1000 + c.rejected);
    // Only kasou moves running groups.
    EXPECT_EQ(a.migrations, 0u);
    EXPECT_GT(run(topology, PlacementPolicy::Kasou, 7).migrations, 0u);
}

TEST(Simulator, CoherenceCostCountsRemoteDistanceAndCacheCrossings)
{
    auto const& topology = shipped("48amd64-4pa2n6c-sparse"); // node0 = CPUs 0-5, node1 = 6-11, distance 16
    EXPECT_EQ(group_coherence_cost(topology, { 0, 1, 2 }), 0.0);
    // One pair across nodes 0 and 1: (16 - 10) plus one LLC boundary.
    EXPECT_EQ(group_coherence_cost(topology, { 0, 6 }), 6.0 + LLC_CROSSING_COST);
    // Two vCPUs on node0 and one on node33 (distance 22): 2 pairs * 12 + one boundary.
    EXPECT_EQ(group_coherence_cost(topology, { 0, 1, 18 }), 24.0 + LLC_CROSSING_COST);
}
