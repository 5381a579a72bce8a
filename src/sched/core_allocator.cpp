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
    for (unsigned c = 0; c < cores.size(); ++c) {
        if (c < options.housekeeping_cores) {
            m_core_owner[c] = HOUSEKEEPING;
            continue;
        }
        ++m_free_cores;
        ++m_llc_free[cores[c].llc];
        m_llc_free_threads[cores[c].llc] += unsigned(cores[c].threads.size());
    }
}

unsigned CoreAllocator::units_of(unsigned core, bool smt) const
{
    return smt ? unsigned(m_topology.cores()[core].threads.size()) : 1;
}

// Takes cores in `order` until `units` are covered.
std::optional<std::vector<unsigned>> CoreAllocator::choose_in_order(unsigned units, bool smt, std::vector<unsigned> const& order) const
{
    std::vector<unsigned> chosen;
    unsigned covered = 0;
    for (unsigned core : order) {
        if (covered >= units)
            break;
        chosen.push_back(core);
        covered += units_of(core, smt);
    }
    if (covered < units)
        return std::nullopt;
    return chosen;
}

std::optional<std::vector<unsigned>> CoreAllocator::choose_kasou(unsigned units, bool smt, std::vector<unsigned> const& near) const
{
    auto const& topology = m_topology;
    auto const& llcs = topology.llc_domains();
    auto llc_units = [&](unsigned l) { return smt ? m_llc_free_threads[l] : m_llc_free[l]; };
    std::set<unsigned> near_llcs;
    for (unsigned core : near)
        near_llcs.insert(topology.cores()[core].llc);

    // Cores of the given LLCs in order, taking LLCs greedily: the best-fitting one when one can hold
    // what remains, else the one with the most room (so the group spans as few caches as possible).
    auto fill = [&](std::vector<unsigned> candidates, unsigned needed) -> std::optional<std::vector<unsigned>> {
        std::vector<unsigned> chosen;
        unsigned remaining = needed;
        while (remaining > 0 && !candidates.empty()) {
            auto better = [&](unsigned a, unsigned b) {
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
            unsigned llc = *best;
            candidates.erase(best);
            if (llc_units(llc) == 0)
                break;
            for (unsigned core : llcs[llc].cores) {
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
    std::vector<unsigned> all_llcs(llcs.size());
    std::iota(all_llcs.begin(), all_llcs.end(), 0u);
    for (unsigned l : all_llcs) {
        if (llc_units(l) >= units)
            return fill(all_llcs, units);
    }
    // 2. One NUMA node: the tightest fit among the nodes that can hold the group.
    unsigned node_count = unsigned(topology.numa_nodes().size());
    std::vector<unsigned> node_units(node_count, 0);
    std::vector<std::vector<unsigned>> node_llcs(node_count);
    for (unsigned l : all_llcs) {
        node_units[llcs[l].node] += llc_units(l);
        node_llcs[llcs[l].node].push_back(l);
    }
    std::optional<unsigned> best_node;
    for (unsigned n = 0; n < node_count; ++n) {
        if (node_units[n] >= units && (!best_node || node_units[n] < node_units[*best_node]))
            best_node = n;
    }
    if (best_node)
        return fill(node_llcs[*best_node], units);
    // 3. Several nodes: grow from each seed node by distance; keep the cheapest set.
    std::optional<std::vector<unsigned>> best_nodes;
    unsigned best_cost = 0;
    for (unsigned seed = 0; seed < node_count; ++seed) {
        if (node_units[seed] == 0)
            continue;
        std::vector<unsigned> order(node_count);
        std::iota(order.begin(), order.end(), 0u);
        std::stable_sort(order.begin(), order.end(), [&](unsigned a, unsigned b) {
            unsigned da = topology.distance(seed, a);
            unsigned db = topology.distance(seed, b);
            return da < db || (da == db && node_units[a] > node_units[b]);
        });
        std::vector<unsigned> picked;
        unsigned covered = 0;
        for (unsigned n : order) {
            if (covered >= units)
                break;
            if (node_units[n] == 0)
                continue;
            picked.push_back(n);
            covered += node_units[n];
        }
        if (covered < units)
            continue;
        unsigned cost = 0;
        for (unsigned a : picked) {
            for (unsigned b : picked)
                cost += topology.distance(a, b);
        }
        if (!best_nodes || cost < best_cost) {
            best_nodes = picked;
            best_cost = cost;
        }
    }
    if (!best_nodes)
        return std::nullopt;
    std::vector<unsigned> chosen;
    unsigned remaining = units;
    for (unsigned n : *best_nodes) {
        unsigned take = std::min(remaining, node_units[n]);
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

std::vector<unsigned> CoreAllocator::spread_order() const
{
    auto const& packages = m_topology.packages();
    std::vector<std::vector<unsigned>> per_package(packages.size());
    for (unsigned c = 0; c < m_topology.cores().size(); ++c) {
        if (m_core_owner[c] == FREE)
            per_package[m_topology.cores()[c].package].push_back(c);
    }
    std::vector<unsigned> order;
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

std::vector<unsigned> CoreAllocator::packed_order(unsigned units, bool smt) const
{
    auto const& packages = m_topology.packages();
    std::vector<std::vector<unsigned>> per_package(packages.size());
    std::vector<unsigned> total(packages.size(), 0);
    std::vector<unsigned> free(packages.size(), 0);
    for (unsigned c = 0; c < m_topology.cores().size(); ++c) {
        unsigned package = m_topology.cores()[c].package;
        total[package] += units_of(c, smt);
        if (m_core_owner[c] == FREE) {
            per_package[package].push_back(c);
            free[package] += units_of(c, smt);
        }
    }
    std::vector<unsigned> index(packages.size());
    std::iota(index.begin(), index.end(), 0u);
    // Whole free packages first when the request covers one (the CPU manager takes full sockets),
    // then the fullest packages first, to pack.
    std::stable_sort(index.begin(), index.end(), [&](unsigned a, unsigned b) {
        bool a_whole = free[a] == total[a] && total[a] <= units;
        bool b_whole = free[b] == total[b] && total[b] <= units;
        if (a_whole != b_whole)
            return a_whole;
        return free[a] < free[b];
    });
    std::vector<unsigned> order;
    for (unsigned p : index)
        order.insert(order.end(), per_package[p].begin(), per_package[p].end());
    return order;
}

std::optional<std::vector<unsigned>> CoreAllocator::choose_cores(unsigned units, bool smt, std::vector<unsigned> const& near) const
{
    switch (m_options.policy) {
    case PlacementPolicy::Kasou:
        return choose_kasou(units, smt, near);
    case PlacementPolicy::FirstFit: {
        std::vector<unsigned> order;
        for (unsigned c = 0; c < m_topology.cores().size(); ++c) {
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

void CoreAllocator::claim_core(unsigned core, int owner)
{
    auto const& info = m_topology.cores()[core];
    m_core_owner[core] = owner;
    --m_free_cores;
    --m_llc_free[info.llc];
    m_llc_free_threads[info.llc] -= unsigned(info.threads.size());
}

void CoreAllocator::take(CoreGroup& group, std::vector<unsigned> const& cores)
{
    for (unsigned core : cores) {
        claim_core(core, int(group.id));
        group.held = group.held | m_topology.cores()[core].cpus;
    }
}

void CoreAllocator::drop_core(unsigned core)
{
    auto const& info = m_topology.cores()[core];
    m_core_owner[core] = FREE;
    ++m_free_cores;
    ++m_llc_free[info.llc];
    m_llc_free_threads[info.llc] += unsigned(info.threads.size());
}

std::vector<unsigned> CoreAllocator::cpus_for(std::vector<unsigned> const& cores, GroupRequest const& request) const
{
    std::vector<unsigned> cpus;
    for (unsigned core : cores) {
        auto const& threads = m_topology.cores()[core].threads;
        for (size_t t = 0; t < (request.smt ? threads.size() : 1) && cpus.size() < request.vcpus; ++t)
            cpus.push_back(threads[t]);
    }
    return cpus;
}

std::vector<unsigned> CoreAllocator::cores_of(CoreGroup const& group) const
{
    // In vCPU order. Every held core carries at least one vCPU; the rest of `held` are idle siblings.
    std::vector<unsigned> cores;
    for (unsigned cpu : group.cpus) {
        unsigned core = m_topology.cpu(cpu).core;
        if (std::find(cores.begin(), cores.end(), core) == cores.end())
            cores.push_back(core);
    }
    return cores;
}

ErrorOr<unsigned> CoreAllocator::allocate_shared(CoreGroup& group)
{
    // Shared groups go where the fewest other shared groups run, within one cache domain if possible.
    auto const& cores = m_topology.cores();
    std::vector<unsigned> order;
    for (unsigned c = 0; c < cores.size(); ++c) {
        if (m_core_owner[c] == FREE || m_core_owner[c] == SHARED)
            order.push_back(c);
    }
    std::vector<unsigned> llc_units(m_topology.llc_domains().size(), 0);
    std::vector<unsigned> llc_load(m_topology.llc_domains().size(), 0);
    for (unsigned c : order) {
        llc_units[cores[c].llc] += units_of(c, group.request.smt);
        llc_load[cores[c].llc] += m_shared_users[c];
    }
    std::optional<unsigned> best;
    for (unsigned l = 0; l < llc_units.size(); ++l) {
        if (llc_units[l] >= group.request.vcpus && (!best || llc_load[l] * llc_units[*best] < llc_load[*best] * llc_units[l]))
            best = l;
    }
    std::stable_sort(order.begin(), order.end(), [&](unsigned a, unsigned b) {
        bool a_in = best && cores[a].llc == *best;
        bool b_in = best && cores[b].llc == *best;
        if (a_in != b_in)
            return a_in;
        return m_shared_users[a] < m_shared_users[b];
    });
    auto chosen = choose_in_order(group.request.vcpus, group.request.smt, order);
    if (!chosen)
        return make_error(ErrorKind::ResourceExhausted, fmt::format("no room for a shared group of {} vCPUs", group.request.vcpus));
    for (unsigned core : *chosen) {
        if (m_core_owner[core] == FREE)
            claim_core(core, SHARED);
        ++m_shared_users[core];
        group.held = group.held | cores[core].cpus;
    }
    group.cpus = cpus_for(*chosen, group.request);
    return group.id;
}

ErrorOr<unsigned> CoreAllocator::allocate(GroupRequest const& request)
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

ErrorOr<unsigned> CoreAllocator::allocate_exact(CpuSet const& cpus)
{
    if (cpus.empty())
        return make_error("an empty CPU list");
    std::vector<unsigned> cores;
    bool siblings = false;
    for (unsigned cpu : cpus.to_vector()) {
        auto index = m_topology.index_of(cpu);
        if (!index)
            return make_error(fmt::format("CPU {} is not online on this host (online: {})", cpu, m_topology.online().to_list()));
        unsigned core = m_topology.cpus()[*index].core;
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

void CoreAllocator::release(unsigned id)
{
    auto it = m_groups.find(id);
    if (it == m_groups.end())
        return;
    for (unsigned core : cores_of(it->second)) {
        if (m_core_owner[core] == SHARED) {
            if (--m_shared_users[core] == 0)
                drop_core(core);
        } else if (m_core_owner[core] == int(id)) {
            drop_core(core);
        }
    }
    m_groups.erase(it);
}

unsigned CoreAllocator::relocate(CoreGroup& group, std::vector<unsigned> const& cores)
{
    auto old_cpus = group.cpus;
    group.held = CpuSet();
    take(group, cores);
    group.cpus = cpus_for(cores, group.request);
    unsigned moved = 0;
    for (size_t i = 0; i < std::min(old_cpus.size(), group.cpus.size()); ++i)
        moved += old_cpus[i] != group.cpus[i];
    return moved;
}

ErrorOr<unsigned> CoreAllocator::resize(unsigned id, unsigned vcpus)
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
            request.vcpus = unsigned(old_cpus.size());
            fresh = CoreGroup { id, request, {}, {} };
            MUST(allocate_shared(fresh));
            m_groups.emplace(id, std::move(fresh));
            return tl::unexpected(placed.error());
        }
        unsigned moved = 0;
        for (size_t i = 0; i < std::min(old_cpus.size(), fresh.cpus.size()); ++i)
            moved += old_cpus[i] != fresh.cpus[i];
        m_groups.emplace(id, std::move(fresh));
        return moved;
    }

    auto cores = cores_of(group);
    auto old_cpus = group.cpus;
    auto const& topology = m_topology;
    bool smt = group.request.smt;
    unsigned held_units = 0;
    for (unsigned core : cores)
        held_units += units_of(core, smt);

    if (vcpus <= old_cpus.size()) {
        // Shrink: keep the cores in the cache domain that holds most of the group.
        std::vector<unsigned> per_llc(topology.llc_domains().size(), 0);
        for (unsigned core : cores)
            ++per_llc[topology.cores()[core].llc];
        std::vector<unsigned> keep = cores;
        if (m_options.policy == PlacementPolicy::Kasou) {
            std::stable_sort(keep.begin(), keep.end(), [&](unsigned a, unsigned b) {
                return per_llc[topology.cores()[a].llc] > per_llc[topology.cores()[b].llc];
            });
        }
        std::vector<unsigned> kept;
        unsigned covered = 0;
        for (unsigned core : keep) {
            if (covered < vcpus) {
                kept.push_back(core);
                covered += units_of(core, smt);
            } else {
                drop_core(core);
            }
        }
        // Preserve the original order of the cores kept.
        std::vector<unsigned> ordered;
        for (unsigned core : cores) {
            if (std::find(kept.begin(), kept.end(), core) != kept.end())
                ordered.push_back(core);
        }
        for (unsigned core : ordered)
            drop_core(core);
        group.request.vcpus = vcpus;
        return relocate(group, ordered);
    }

    unsigned extra = vcpus > held_units ? vcpus - held_units : 0;
    std::optional<std::vector<unsigned>> grown;
    if (extra > 0)
        grown = choose_cores(extra, smt, cores);
    else
        grown = std::vector<unsigned>();
    auto span = [&](std::vector<unsigned> const& set) {
        std::set<unsigned> llcs;
        for (unsigned core : set)
            llcs.insert(topology.cores()[core].llc);
        return llcs.size();
    };
    if (m_options.policy == PlacementPolicy::Kasou) {
        // Compare growing in place with placing the whole group afresh.
        for (unsigned core : cores)
            drop_core(core);
        auto fresh = choose_kasou(vcpus, smt, cores);
        for (unsigned core : cores)
            claim_core(core, int(id));
        std::optional<std::vector<unsigned>> in_place;
        if (grown) {
            in_place = cores;
            in_place->insert(in_place->end(), grown->begin(), grown->end());
        }
        if (fresh && (!in_place || span(*fresh) < span(*in_place))) {
            for (unsigned core : cores)
                drop_core(core);
            group.request.vcpus = vcpus;
            return relocate(group, *fresh);
        }
    }
    if (!grown)
        return make_error(ErrorKind::ResourceExhausted, fmt::format("no room to grow group {} to {} vCPUs", id, vcpus));
    std::vector<unsigned> all = cores;
    all.insert(all.end(), grown->begin(), grown->end());
    for (unsigned core : cores)
        drop_core(core);
    group.request.vcpus = vcpus;
    return relocate(group, all);
}

unsigned CoreAllocator::compact()
{
    if (m_options.policy != PlacementPolicy::Kasou)
        return 0;
    unsigned moved = 0;
    auto const& topology = m_topology;
    auto span = [&](std::vector<unsigned> const& set) {
        std::set<unsigned> llcs;
        std::set<unsigned> nodes;
        for (unsigned core : set) {
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
        for (unsigned core : cores)
            drop_core(core);
        auto fresh = choose_kasou(group.request.vcpus, group.request.smt, cores);
        if (fresh && span(*fresh) < current) {
            moved += relocate(group, *fresh);
        } else {
            for (unsigned core : cores)
                claim_core(core, int(id));
        }
    }
    return moved;
}

CoreGroup const* CoreAllocator::group(unsigned id) const
{
    auto it = m_groups.find(id);
    return it == m_groups.end() ? nullptr : &it->second;
}

GuestTopology CoreAllocator::guest_topology(unsigned id) const
{
    auto const* group = this->group(id);
    if (!group || group->cpus.empty())
        return {};
    // Threads per core as the group uses them; only a uniform count can be told to a guest.
    std::map<unsigned, unsigned> used;
    for (unsigned cpu : group->cpus)
        ++used[m_topology.cpu(cpu).core];
    unsigned threads = used.begin()->second;
    for (auto const& [core, count] : used) {
        if (count != threads)
            threads = 1;
    }
    if (group->cpus.size() % threads != 0)
        threads = 1;
    return GuestTopology { threads, unsigned(group->cpus.size()) / threads, 1 };
}

unsigned CoreAllocator::largest_free_llc() const
{
    return m_llc_free.empty() ? 0 : *std::max_element(m_llc_free.begin(), m_llc_free.end());
}

} // namespace kasou::sched
