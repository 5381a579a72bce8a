#include "sched/simulator.h"

#include <algorithm>
#include <random>
#include <set>

namespace kasou::sched {

namespace {

struct LiveVm {
    u32 vcpus;
    std::optional<u32> group; // none when its arrival was rejected
};

u32 max_vm_size(Topology const& topology)
{
    u32 cores = u32(topology.cores().size());
    return std::clamp(cores / 4, 1u, 32u);
}

} // namespace

double group_coherence_cost(Topology const& topology, std::vector<u32> const& cpus)
{
    std::vector<u32> per_node(topology.numa_nodes().size(), 0);
    std::set<u32> llcs;
    for (u32 cpu : cpus) {
        auto const& info = topology.cpu(cpu);
        ++per_node[info.node];
        llcs.insert(info.llc);
    }
    double cost = 0;
    for (u32 a = 0; a < per_node.size(); ++a) {
        for (u32 b = a + 1; b < per_node.size(); ++b) {
            u32 local = topology.distance(a, a);
            u32 distance = topology.distance(a, b);
            cost += double(per_node[a]) * per_node[b] * (distance > local ? distance - local : 0);
        }
    }
    return cost + double(LLC_CROSSING_COST) * double(llcs.size() - (llcs.empty() ? 0 : 1));
}

SimulationResult simulate(Topology const& topology, SimulationOptions const& options)
{
    CoreAllocator allocator(topology, AllocatorOptions { options.policy, 0 });
    std::mt19937_64 random(options.seed);
    SimulationResult result;
    u32 const capacity = u32(topology.cores().size());
    u32 const largest = max_vm_size(topology);
    std::vector<u32> sizes;
    for (u32 size : { 1u, 2u, 3u, 4u, 6u, 8u, 12u, 16u, 24u, 32u }) {
        if (size <= largest)
            sizes.push_back(size);
    }
    auto draw_size = [&] {
        // Small VMs are common, large ones rare: weight 1/(index+1).
        std::vector<double> weights;
        for (size_t i = 0; i < sizes.size(); ++i)
            weights.push_back(1.0 / double(i + 1));
        std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
        return sizes[pick(random)];
    };
    std::vector<LiveVm> live;
    u32 demand = 0; // vCPUs the workload asks for, placed or not
    double samples = 0;
    double llc_spans = 0;
    double numa_spans = 0;
    double cost = 0;
    double fragmentation = 0;
    double fragmentation_samples = 0;
    u32 largest_llc = 0;
    for (auto const& llc : topology.llc_domains())
        largest_llc = std::max(largest_llc, u32(llc.cores.size()));

    for (u32 event = 0; event < options.events; ++event) {
        double roll = std::uniform_real_distribution<double>(0, 1)(random);
        double arrive = demand < capacity * 85 / 100 ? 0.6 : 0.2;
        if (live.empty() || roll < arrive) {
            u32 vcpus = draw_size();
            ++result.requests;
            auto group = allocator.allocate(GroupRequest { vcpus, Sharing::Dedicated, false });
            live.push_back(LiveVm { vcpus, group ? std::optional<u32>(*group) : std::nullopt });
            demand += vcpus;
            if (group)
                ++result.placed;
            else
                ++result.rejected;
        } else if (roll < arrive + (1 - arrive) * 0.6) {
            size_t index = std::uniform_int_distribution<size_t>(0, live.size() - 1)(random);
            if (live[index].group)
                allocator.release(*live[index].group);
            demand -= live[index].vcpus;
            live.erase(live.begin() + long(index));
            result.migrations += allocator.compact();
        } else {
            size_t index = std::uniform_int_distribution<size_t>(0, live.size() - 1)(random);
            u32 vcpus = draw_size();
            auto& vm = live[index];
            demand = demand - vm.vcpus + vcpus;
            vm.vcpus = vcpus;
            if (!vm.group)
                continue;
            ++result.requests;
            auto moved = allocator.resize(*vm.group, vcpus);
            if (moved)
                result.migrations += *moved;
            else
                ++result.rejected;
            result.migrations += allocator.compact();
        }

        for (auto const& [id, group] : allocator.groups()) {
            std::set<u32> llcs;
            std::set<u32> nodes;
            for (u32 cpu : group.cpus) {
                llcs.insert(topology.cpu(cpu).llc);
                nodes.insert(topology.cpu(cpu).node);
            }
            samples += 1;
            llc_spans += llcs.size() > 1;
            numa_spans += nodes.size() > 1;
            cost += group_coherence_cost(topology, group.cpus);
        }
        u32 free = allocator.free_cores();
        if (free > 0) {
            fragmentation += 1.0 - double(allocator.largest_free_llc()) / double(std::min(free, largest_llc));
            fragmentation_samples += 1;
        }
    }
    if (samples > 0) {
        result.cross_llc_share = llc_spans / samples;
        result.cross_numa_share = numa_spans / samples;
        result.coherence_cost = cost / samples;
    }
    if (fragmentation_samples > 0)
        result.fragmentation = fragmentation / fragmentation_samples;
    return result;
}

nlohmann::ordered_json simulation_to_json(SimulationResult const& result)
{
    return nlohmann::ordered_json {
        { "requests", result.requests },
        { "placed", result.placed },
        { "cross_llc_share", result.cross_llc_share },
        { "cross_numa_share", result.cross_numa_share },
        { "coherence_cost", result.coherence_cost },
        { "fragmentation", result.fragmentation },
        { "rejected", result.rejected },
        { "migrations", result.migrations },
    };
}

} // namespace kasou::sched
