#pragma once

#include <nlohmann/json.hpp>

#include "base/types.h"
#include "sched/core_allocator.h"
#include "sched/topology.h"

namespace kasou::sched {

struct SimulationOptions {
    PlacementPolicy policy { PlacementPolicy::Kasou };
    u64 seed { 1 };
    u32 events { 3000 };
};

// What one replay measured. Shares and costs are averaged over every (event, live VM) sample.
struct SimulationResult {
    u32 requests { 0 };        // arrivals and resizes asked for
    u32 placed { 0 };          // arrivals that got a group
    double cross_llc_share { 0 };   // VMs spanning more than one LLC domain
    double cross_numa_share { 0 };  // VMs spanning more than one NUMA node
    double coherence_cost { 0 };    // mean per VM: pairwise extra NUMA distance + LLC crossings
    double fragmentation { 0 };     // mean of 1 - largest free LLC run / the most it could be
    u32 rejected { 0 };        // arrivals and growths that found no room
    u32 migrations { 0 };      // vCPUs moved to another CPU while running
};

// Cost of one LLC boundary crossed by a VM, in NUMA distance units (a local access is 10).
constexpr u32 LLC_CROSSING_COST = 10;

// Replays a seeded synthetic workload on a topology with one placement policy: VMs of 1 to 32 vCPUs
// (at most a quarter of the machine) arrive, leave and change size, holding the machine around
// 85 % busy. The event sequence depends only on the seed and the machine's size, so every policy
// sees the same requests. kasou also compacts after departures, as its rebalancer would.
SimulationResult simulate(Topology const& topology, SimulationOptions const& options);
nlohmann::ordered_json simulation_to_json(SimulationResult const& result);

// The cost of one group under the formula above (exposed for tests).
double group_coherence_cost(Topology const& topology, std::vector<u32> const& cpus);

} // namespace kasou::sched
