// bench_sched [TOPOLOGY_DIR]: the placement simulator's table for every captured topology and policy
// (means over seeds 1-3), with each policy's coherence cost as a ratio to first-fit, naive pinning
// by CPU number, measured in the same run; then the allocator's decision time for 10,000 requests on
// the 256-CPU machine.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sched/core_allocator.h"
#include "sched/simulator.h"
#include "sched/sysfs_source.h"

using namespace kasou::sched;

namespace {

constexpr unsigned SEEDS = 3;
constexpr unsigned DECISIONS = 10'000;

SimulationResult mean_over_seeds(Topology const& topology, PlacementPolicy policy)
{
    SimulationResult mean;
    for (unsigned seed = 1; seed <= SEEDS; ++seed) {
        auto r = simulate(topology, SimulationOptions { policy, seed, 3000 });
        mean.cross_llc_share += r.cross_llc_share / SEEDS;
        mean.cross_numa_share += r.cross_numa_share / SEEDS;
        mean.coherence_cost += r.coherence_cost / SEEDS;
        mean.fragmentation += r.fragmentation / SEEDS;
        mean.rejected += r.rejected;
        mean.migrations += r.migrations;
    }
    return mean;
}

// Allocation decisions under churn: random sizes from 1 to 32; when the machine is full, release a
// random group. Only allocate() calls are timed.
double microseconds_per_decision(Topology const& topology, PlacementPolicy policy)
{
    CoreAllocator allocator(topology, AllocatorOptions { policy, 0 });
    std::mt19937_64 random(42);
    std::vector<unsigned> live;
    std::chrono::nanoseconds spent {};
    for (unsigned i = 0; i < DECISIONS; ++i) {
        unsigned vcpus = std::uniform_int_distribution<unsigned>(1, 32)(random);
        bool smt = random() % 2;
        auto start = std::chrono::steady_clock::now();
        auto id = allocator.allocate(GroupRequest { vcpus, Sharing::Dedicated, smt });
        spent += std::chrono::steady_clock::now() - start;
        if (id) {
            live.push_back(*id);
            continue;
        }
        while (!live.empty() && allocator.free_cores() < 16) {
            size_t victim = std::uniform_int_distribution<size_t>(0, live.size() - 1)(random);
            allocator.release(live[victim]);
            live.erase(live.begin() + long(victim));
        }
    }
    return double(spent.count()) / 1000.0 / DECISIONS;
}

} // namespace

int main(int argc, char** argv)
{
    std::string dir = argc > 1 ? argv[1] : KASOU_TOPOLOGY_DIR;
    std::vector<std::string> archives;
    for (auto const& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().string().ends_with(".tar.bz2"))
            archives.push_back(entry.path().string());
    }
    std::sort(archives.begin(), archives.end());
    PlacementPolicy const policies[] = { PlacementPolicy::Kasou, PlacementPolicy::FirstFit, PlacementPolicy::Spread, PlacementPolicy::Packed };

    fmt::print("| topology | policy | cross_llc_share | cross_numa_share | coherence_cost | vs first-fit | fragmentation | rejected | migrations |\n");
    fmt::print("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    std::string decision_topology;
    for (auto const& archive : archives) {
        auto topology = load_topology(archive);
        if (!topology) {
            fmt::print(stderr, "{}\n", topology.error().to_string());
            return 1;
        }
        std::string name = std::filesystem::path(archive).filename().string();
        name = name.substr(0, name.size() - 8);
        if (topology->cpus().size() == 256)
            decision_topology = archive;
        double first_fit_cost = mean_over_seeds(*topology, PlacementPolicy::FirstFit).coherence_cost;
        for (auto policy : policies) {
            auto r = mean_over_seeds(*topology, policy);
            std::string ratio = first_fit_cost > 0 ? fmt::format("{:.2f}", r.coherence_cost / first_fit_cost) : "-";
            fmt::print("| {} | {} | {:.3f} | {:.3f} | {:.2f} | {} | {:.3f} | {} | {} |\n", name, policy_name(policy),
                r.cross_llc_share, r.cross_numa_share, r.coherence_cost, ratio, r.fragmentation, r.rejected, r.migrations);
        }
    }
    if (decision_topology.empty())
        return 0;
    auto topology = load_topology(decision_topology);
    if (!topology)
        return 1;
    fmt::print("\nallocator decision time, {} requests on {} ({} CPUs):\n\n", DECISIONS,
        std::filesystem::path(decision_topology).filename().string(), topology->cpus().size());
    fmt::print("| policy | µs per decision |\n|---|---:|\n");
    for (auto policy : policies)
        fmt::print("| {} | {:.2f} |\n", policy_name(policy), microseconds_per_decision(*topology, policy));
    return 0;
}
