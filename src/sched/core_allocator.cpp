#include "sched/core_allocator.h"

#include <algorithm>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::sched {

ErrorOr<PlacementPolicy> parse_policy(std::string_view name)
{
    if (name == "kasou")
        return PlacementPolicy::Kasou;
    if (name == "first-fit")
        return PlacementPolicy::FirstFit;
    if (name == "spread")
        return PlacementPolicy::Spread;
    if (name == "packed")
        return PlacementPolicy::Packed;
    return make_error(fmt::format("unknown placement policy '{}' (want kasou, first-fit, spread or packed)", name));
}

char const* policy_name(PlacementPolicy policy)
{
    switch (policy) {
    case PlacementPolicy::Kasou:
        return "kasou";
    case PlacementPolicy::FirstFit:
        return "first-fit";
    case PlacementPolicy::Spread:
        return "spread";
    case PlacementPolicy::Packed:
        return "packed";
    }
    return "?";
}

CoreAllocator::CoreAllocator(Topology const& topology, AllocatorOptions options)
    : m_topology(topology)
    , m_options(options)
    , m_core_owner(topology.cores().size(), FREE)
    , m_shared_users(topology.cores().size(), 0)
    , m_llc_free(topology.llc_domains().size(), 0)
    , m_llc_free_threads(topology.llc_domains().size(), 0)
{
    auto const& cores = topology.cores();
    for (u32 c = 0; c < cores.size(); ++c) {
        if (c < options.housekeeping_cores) {
            m_core_owner[c] = HOUSEKEEPING;
            continue;
        }
        ++m_free_cores;
        ++m_llc_free[cores[c].llc];
        m_llc_free_threads[cores[c].llc] += u32(cores[c].threads.size());
    }
}

u32 CoreAllocator::units_of(u32 core, bool smt) const
{
    return smt ? u32(m_topology.cores()[core].threads.size()) : 1;
}

// Takes cores in `order` until `units` are covered.
std::optional<std::vector<u32>> CoreAllocator::choose_in_order(u32 units, bool smt, std::vector<u32> const& order) const
{
    std::vector<u32> chosen;
    u32 covered = 0;
    for (u32 core : order) {
        if (covered >= units)
            break;
        chosen.push_back(core);
        covered += units_of(core, smt);
    }
    if (covered < units)
        return std::nullopt;
    return chosen;
}

std::optional<std::vector<u32>> CoreAllocator::choose_kasou(u32 units, bool smt, std::vector<u32> const& near) const
{
    auto const& topology = m_topology;
    auto const& llcs = topology.llc_domains();
    auto llc_units = [&](u32 l) { return smt ? m_llc_free_threads[l] : m_llc_free[l]; };
    std::set<u32> near_llcs;
    for (u32 core : near)
        near_llcs.insert(topology.cores()[core].llc);

    // Cores of the given LLCs in order, taking LLCs greedily: the best-fitting one when one can hold
    // what remains, else the one with the most room (so the group spans as few caches as possible).
    auto fill = [&](std::vector<u32> candidates, u32 needed) -> std::optional<std::vector<u32>> {
        std::vector<u32> chosen;
        u32 remaining = needed;
        while (remaining > 0 && !candidates.empty()) {
            auto better = [&](u32 a, u32 b) {
                bool a_fits = llc_units(a) >= remaining;
                bool b_fits = llc_units(b) >= remaining;
                if (a_fits != b_fits)
                    return a_fits;
                bool a_near = near_llcs.contains(a);
                bool b_near = near_llcs.contains(b);
                if (a_near != b_near)
                    return a_near;
                if (a_fits)
                    return llc_units(a) < llc_units(b) || (llc_units(a) == llc_units(b) && a < b);
                return llc_units(a) > llc_units(b) || (llc_units(a) == llc_units(b) && a < b);
            };
            auto best = std::min_element(candidates.begin(), candidates.end(), better);
            u32 llc = *best;
            candidates.erase(best);
            if (llc_units(llc) == 0)
                break;
            for (u32 core : llcs[llc].cores) {
                if (remaining == 0)
                    break;
                if (m_core_owner[core] != FREE)
                    continue;
                chosen.push_back(core);
                remaining -= std::min(remaining, units_of(core, smt));
            }
        }
        if (remaining > 0)
            return std::nullopt;
        return chosen;
    };

    // 1. One LLC domain (a near one first, then the tightest fit).
    std::vector<u32> all_llcs(llcs.size());
    std::iota(all_llcs.begin(), all_llcs.end(), 0u);
    for (u32 l : all_llcs) {
        if (llc_units(l) >= units)
            return fill(all_llcs, units);
    }
    // 2. One NUMA node: the tightest fit among the nodes that can hold the group.
    u32 node_count = u32(topology.numa_nodes().size());
    std::vector<u32> node_units(node_count, 0);
    std::vector<std::vector<u32>> node_llcs(node_count);
    for (u32 l : all_llcs) {
        node_units[llcs[l].node] += llc_units(l);
        node_llcs[llcs[l].node].push_back(l);
    }
    std::optional<u32> best_node;
    for (u32 n = 0; n < node_count; ++n) {
        if (node_units[n] >= units && (!best_node || node_units[n] < node_units[*best_node]))
            best_node = n;
    }
    if (best_node)
        return fill(node_llcs[*best_node], units);
    // 3. Several nodes: grow from each seed node by distance; keep the cheapest set.
    std::optional<std::vector<u32>> best_nodes;
    u32 best_cost = 0;
    for (u32 seed = 0; seed < node_count; ++seed) {
        if (node_units[seed] == 0)
            continue;
        std::vector<u32> order(node_count);
        std::iota(order.begin(), order.end(), 0u);
        std::stable_sort(order.begin(), order.end(), [&](u32 a, u32 b) {
            u32 da = topology.distance(seed, a);
            u32 db = topology.distance(seed, b);
            return da < db || (da == db && node_units[a] > node_units[b]);
        });
        std::vector<u32> picked;
        u32 covered = 0;
        for (u32 n : order) {
            if (covered >= units)
                break;
            if (node_units[n] == 0)
                continue;
            picked.push_back(n);
            covered += node_units[n];
        }
        if (covered < units)
            continue;
        u32 cost = 0;
        for (u32 a : picked) {
            for (u32 b : picked)
                cost += topology.distance(a, b);
        }
        if (!best_nodes || cost < best_cost) {
            best_nodes = picked;
            best_cost = cost;
        }
    }
    if (!best_nodes)
        return std::nullopt;
    std::vector<u32> chosen;
    u32 remaining = units;
    for (u32 n : *best_nodes) {
        u32 take = std::min(remaining, node_units[n]);
        auto part = fill(node_llcs[n], take);
        if (!part)
            return std::nullopt;
        chosen.insert(chosen.end(), part->begin(), part->end());
        remaining -= take;
        if (remaining == 0)
            break;
    }
    return chosen;
}

std::vector<u32> CoreAllocator::spread_order() const
{
    auto const& packages = m_topology.packages();
    std::vector<std::vector<u32>> per_package(packages.size());
    for (u32 c = 0; c < m_topology.cores().size(); ++c) {
        if (m_core_owner[c] == FREE)
            per_package[m_topology.cores()[c].package].push_back(c);
    }
    std::vector<u32> order;
    for (size_t round = 0;; ++round) {
        bool any = false;
        for (auto const& cores : per_package) {
            if (round < cores.size()) {
                order.push_back(cores[round]);
                any = true;
            }
        }
        if (!any)
            break;
    }
    return order;
}

std::vector<u32> CoreAllocator::packed_order(u32 units, bool smt) const
{
    auto const& packages = m_topology.packages();
    std::vector<std::vector<u32>> per_package(packages.size());
    std::vector<u32> total(packages.size(), 0);
    std::vector<u32> free(packages.size(), 0);
    for (u32 c = 0; c < m_topology.cores().size(); ++c) {
        u32 package = m_topology.cores()[c].package;
        total[package] += units_of(c, smt);
        if (m_core_owner[c] == FREE) {
            per_package[package].push_back(c);
            free[package] += units_of(c, smt);
        }
    }
    std::vector<u32> index(packages.size());
    std::iota(index.begin(), index.end(), 0u);
    // Whole free packages first when the request covers one (the CPU manager takes full sockets),
    // then the fullest packages first, to pack.
    std::stable_sort(index.begin(), index.end(), [&](u32 a, u32 b) {
        bool a_whole = free[a] == total[a] && total[a] <= units;
        bool b_whole = free[b] == total[b] && total[b] <= units;
        if (a_whole != b_whole)
            return a_whole;
        return free[a] < free[b];
    });
    std::vector<u32> order;
    for (u32 p : index)
        order.insert(order.end(), per_package[p].begin(), per_package[p].end());
    return order;
}

std::optional<std::vector<u32>> CoreAllocator::choose_cores(u32 units, bool smt, std::vector<u32> const& near) const
{
    switch (m_options.policy) {
    case PlacementPolicy::Kasou:
        return choose_kasou(units, smt, near);
    case PlacementPolicy::FirstFit: {
        std::vector<u32> order;
        for (u32 c = 0; c < m_topology.cores().size(); ++c) {
            if (m_core_owner[c] == FREE)
                order.push_back(c);
        }
        return choose_in_order(units, smt, order);
    }
    case PlacementPolicy::Spread:
        return choose_in_order(units, smt, spread_order());
    case PlacementPolicy::Packed:
        return choose_in_order(units, smt, packed_order(units, smt));
    }
    return std::nullopt;
}

void CoreAllocator::claim_core(u32 core, i32 owner)
{
    auto const& info = m_topology.cores()[core];
    m_core_owner[core] = owner;
    --m_free_cores;
    --m_llc_free[info.llc];
    m_llc_free_threads[info.llc] -= u32(info.threads.size());
}

void CoreAllocator::take(CoreGroup& group, std::vector<u32> const& cores)
{
    for (u32 core : cores) {
        claim_core(core, i32(group.id));
        group.held = group.held | m_topology.cores()[core].cpus;
    }
}

void CoreAllocator::drop_core(u32 core)
{
    auto const& info = m_topology.cores()[core];
    m_core_owner[core] = FREE;
    ++m_free_cores;
    ++m_llc_free[info.llc];
    m_llc_free_threads[info.llc] += u32(info.threads.size());
}

std::vector<u32> CoreAllocator::cpus_for(std::vector<u32> const& cores, GroupRequest const& request) const
{
    std::vector<u32> cpus;
    for (u32 core : cores) {
        auto const& threads = m_topology.cores()[core].threads;
        for (size_t t = 0; t < (request.smt ? threads.size() : 1) && cpus.size() < request.vcpus; ++t)
            cpus.push_back(threads[t]);
    }
    return cpus;
}

std::vector<u32> CoreAllocator::cores_of(CoreGroup const& group) const
{
    // In vCPU order. Every held core carries at least one vCPU; the rest of `held` are idle siblings.
    std::vector<u32> cores;
    for (u32 cpu : group.cpus) {
        u32 core = m_topology.cpu(cpu).core;
        if (std::find(cores.begin(), cores.end(), core) == cores.end())
            cores.push_back(core);
    }
    return cores;
}

ErrorOr<u32> CoreAllocator::allocate_shared(CoreGroup& group)
{
    // Shared groups go where the fewest other shared groups run, within one cache domain if possible.
    auto const& cores = m_topology.cores();
    std::vector<u32> order;
    for (u32 c = 0; c < cores.size(); ++c) {
        if (m_core_owner[c] == FREE || m_core_owner[c] == SHARED)
            order.push_back(c);
    }
    std::vector<u32> llc_units(m_topology.llc_domains().size(), 0);
    std::vector<u32> llc_load(m_topology.llc_domains().size(), 0);
    for (u32 c : order) {
        llc_units[cores[c].llc] += units_of(c, group.request.smt);
        llc_load[cores[c].llc] += m_shared_users[c];
    }
    std::optional<u32> best;
    for (u32 l = 0; l < llc_units.size(); ++l) {
        if (llc_units[l] >= group.request.vcpus && (!best || llc_load[l] * llc_units[*best] < llc_load[*best] * llc_units[l]))
            best = l;
    }
    std::stable_sort(order.begin(), order.end(), [&](u32 a, u32 b) {
        bool a_in = best && cores[a].llc == *best;
        bool b_in = best && cores[b].llc == *best;
        if (a_in != b_in)
            return a_in;
        return m_shared_users[a] < m_shared_users[b];
    });
    auto chosen = choose_in_order(group.request.vcpus, group.request.smt, order);
    if (!chosen)
        return make_error(ErrorKind::ResourceExhausted, fmt::format("no room for a shared group of {} vCPUs", group.request.vcpus));
    for (u32 core : *chosen) {
        if (m_core_owner[core] == FREE)
            claim_core(core, SHARED);
        ++m_shared_users[core];
        group.held = group.held | cores[core].cpus;
    }
    group.cpus = cpus_for(*chosen, group.request);
    return group.id;
}

ErrorOr<u32> CoreAllocator::allocate(GroupRequest const& request)
{
    if (request.vcpus == 0)
        return make_error("a core group needs at least one vCPU");
    CoreGroup group { m_next_id, request, {}, {} };
    if (request.sharing == Sharing::Shared) {
        auto id = allocate_shared(group);
        if (!id)
            return id;
        m_groups.emplace(group.id, std::move(group));
        return m_next_id++;
    }
    auto cores = choose_cores(request.vcpus, request.smt, {});
    if (!cores)
        return make_error(ErrorKind::ResourceExhausted, fmt::format("no room for {} dedicated vCPUs ({} free cores)", request.vcpus, m_free_cores));
    take(group, *cores);
    group.cpus = cpus_for(*cores, request);
    m_groups.emplace(group.id, std::move(group));
    return m_next_id++;
}

ErrorOr<u32> CoreAllocator::allocate_exact(CpuSet const& cpus)
{
    if (cpus.empty())
        return make_error("an empty CPU list");
    std::vector<u32> cores;
    bool siblings = false;
    for (u32 cpu : cpus.to_vector()) {
        auto index = m_topology.index_of(cpu);
        if (!index)
            return make_error(fmt::format("CPU {} is not online on this host (online: {})", cpu, m_topology.online().to_list()));
        u32 core = m_topology.cpus()[*index].core;
        if (m_core_owner[core] != FREE && std::find(cores.begin(), cores.end(), core) == cores.end())
            return make_error(ErrorKind::Busy, fmt::format("CPU {} is not free (its core is {})", cpu,
                m_core_owner[core] == HOUSEKEEPING ? "kept for the host" : "used by another group"));
        if (std::find(cores.begin(), cores.end(), core) == cores.end())
            cores.push_back(core);
        else
            siblings = true;
    }
    CoreGroup group { m_next_id, GroupRequest { cpus.count(), Sharing::Dedicated, siblings }, {}, {} };
    take(group, cores);
    group.cpus = cpus.to_vector();
    m_groups.emplace(group.id, std::move(group));
    return m_next_id++;
}

void CoreAllocator::release(u32 id)
{
    auto it = m_groups.find(id);
    if (it == m_groups.end())
        return;
    for (u32 core : cores_of(it->second)) {
        if (m_core_owner[core] == SHARED) {
            if (--m_shared_users[core] == 0)
                drop_core(core);
        } else if (m_core_owner[core] == i32(id)) {
            drop_core(core);
        }
    }
    m_groups.erase(it);
}

void CoreAllocator::set_held_elsewhere(CpuSet const& cpus)
{
    auto const& cores = m_topology.cores();
    for (u32 core = 0; core < cores.size(); ++core) {
        if (m_core_owner[core] == ELSEWHERE)
            drop_core(core);
        if (m_core_owner[core] == FREE && cores[core].cpus.intersects(cpus))
            claim_core(core, ELSEWHERE);
    }
}

CpuSet CoreAllocator::held_cpus() const
{
    CpuSet held;
    for (auto const& [id, group] : m_groups)
        held = held | group.held;
    return held;
}

u32 CoreAllocator::relocate(CoreGroup& group, std::vector<u32> const& cores)
{
    auto old_cpus = group.cpus;
    group.held = CpuSet();
    take(group, cores);
    group.cpus = cpus_for(cores, group.request);
    u32 moved = 0;
    for (size_t i = 0; i < std::min(old_cpus.size(), group.cpus.size()); ++i)
        moved += old_cpus[i] != group.cpus[i];
    return moved;
}

ErrorOr<u32> CoreAllocator::resize(u32 id, u32 vcpus)
{
    auto it = m_groups.find(id);
    if (it == m_groups.end())
        return make_error(ErrorKind::NotFound, fmt::format("no core group {}", id));
    if (vcpus == 0)
        return make_error("a core group needs at least one vCPU");
    auto& group = it->second;
    if (group.request.sharing == Sharing::Shared) {
        // Shared groups are cheap to re-place: release and place again.
        auto request = group.request;
        auto old_cpus = group.cpus;
        release(id);
        request.vcpus = vcpus;
        CoreGroup fresh { id, request, {}, {} };
        auto placed = allocate_shared(fresh);
        if (!placed) {
            request.vcpus = u32(old_cpus.size());
            fresh = CoreGroup { id, request, {}, {} };
            MUST(allocate_shared(fresh));
            m_groups.emplace(id, std::move(fresh));
            return tl::unexpected(placed.error());
        }
        u32 moved = 0;
        for (size_t i = 0; i < std::min(old_cpus.size(), fresh.cpus.size()); ++i)
            moved += old_cpus[i] != fresh.cpus[i];
        m_groups.emplace(id, std::move(fresh));
        return moved;
    }

    auto cores = cores_of(group);
    auto old_cpus = group.cpus;
    auto const& topology = m_topology;
    bool smt = group.request.smt;
    u32 held_units = 0;
    for (u32 core : cores)
        held_units += units_of(core, smt);

    if (vcpus <= old_cpus.size()) {
        // Shrink: keep the cores in the cache domain that holds most of the group.
        std::vector<u32> per_llc(topology.llc_domains().size(), 0);
        for (u32 core : cores)
            ++per_llc[topology.cores()[core].llc];
        std::vector<u32> keep = cores;
        if (m_options.policy == PlacementPolicy::Kasou) {
            std::stable_sort(keep.begin(), keep.end(), [&](u32 a, u32 b) {
                return per_llc[topology.cores()[a].llc] > per_llc[topology.cores()[b].llc];
            });
        }
        std::vector<u32> kept;
        u32 covered = 0;
        for (u32 core : keep) {
            if (covered < vcpus) {
                kept.push_back(core);
                covered += units_of(core, smt);
            } else {
                drop_core(core);
            }
        }
        // Preserve the original order of the cores kept.
        std::vector<u32> ordered;
        for (u32 core : cores) {
            if (std::find(kept.begin(), kept.end(), core) != kept.end())
                ordered.push_back(core);
        }
        for (u32 core : ordered)
            drop_core(core);
        group.request.vcpus = vcpus;
        return relocate(group, ordered);
    }

    u32 extra = vcpus > held_units ? vcpus - held_units : 0;
    std::optional<std::vector<u32>> grown;
    if (extra > 0)
        grown = choose_cores(extra, smt, cores);
    else
        grown = std::vector<u32>();
    auto span = [&](std::vector<u32> const& set) {
        std::set<u32> llcs;
        for (u32 core : set)
            llcs.insert(topology.cores()[core].llc);
        return llcs.size();
    };
    if (m_options.policy == PlacementPolicy::Kasou) {
        // Compare growing in place with placing the whole group afresh.
        for (u32 core : cores)
            drop_core(core);
        auto fresh = choose_kasou(vcpus, smt, cores);
        for (u32 core : cores)
            claim_core(core, i32(id));
        std::optional<std::vector<u32>> in_place;
        if (grown) {
            in_place = cores;
            in_place->insert(in_place->end(), grown->begin(), grown->end());
        }
        if (fresh && (!in_place || span(*fresh) < span(*in_place))) {
            for (u32 core : cores)
                drop_core(core);
            group.request.vcpus = vcpus;
            return relocate(group, *fresh);
        }
    }
    if (!grown)
        return make_error(ErrorKind::ResourceExhausted, fmt::format("no room to grow group {} to {} vCPUs", id, vcpus));
    std::vector<u32> all = cores;
    all.insert(all.end(), grown->begin(), grown->end());
    for (u32 core : cores)
        drop_core(core);
    group.request.vcpus = vcpus;
    return relocate(group, all);
}

u32 CoreAllocator::compact()
{
    if (m_options.policy != PlacementPolicy::Kasou)
        return 0;
    u32 moved = 0;
    auto const& topology = m_topology;
    auto span = [&](std::vector<u32> const& set) {
        std::set<u32> llcs;
        std::set<u32> nodes;
        for (u32 core : set) {
            llcs.insert(topology.cores()[core].llc);
            nodes.insert(topology.cores()[core].node);
        }
        return std::pair(nodes.size(), llcs.size());
    };
    for (auto& [id, group] : m_groups) {
        if (group.request.sharing != Sharing::Dedicated)
            continue;
        auto cores = cores_of(group);
        auto current = span(cores);
        if (current.second <= 1)
            continue;
        for (u32 core : cores)
            drop_core(core);
        auto fresh = choose_kasou(group.request.vcpus, group.request.smt, cores);
        if (fresh && span(*fresh) < current) {
            moved += relocate(group, *fresh);
        } else {
            for (u32 core : cores)
                claim_core(core, i32(id));
        }
    }
    return moved;
}

CoreGroup const* CoreAllocator::group(u32 id) const
{
    auto it = m_groups.find(id);
    return it == m_groups.end() ? nullptr : &it->second;
}

GuestTopology CoreAllocator::guest_topology(u32 id) const
{
    auto const* group = this->group(id);
    if (!group || group->cpus.empty())
        return {};
    // Threads per core as the group uses them; only a uniform count can be told to a guest.
    std::map<u32, u32> used;
    for (u32 cpu : group->cpus)
        ++used[m_topology.cpu(cpu).core];
    u32 threads = used.begin()->second;
    for (auto const& [core, count] : used) {
        if (count != threads)
            threads = 1;
    }
    if (group->cpus.size() % threads != 0)
        threads = 1;
    return GuestTopology { threads, u32(group->cpus.size()) / threads, 1 };
}

u32 CoreAllocator::largest_free_llc() const
{
    return m_llc_free.empty() ? 0 : *std::max_element(m_llc_free.begin(), m_llc_free.end());
}

} // namespace kasou::sched
