#include "sched/topology.h"

#include <algorithm>
#include <map>
#include <numeric>

#include <fmt/format.h>

namespace kasou::sched {

namespace {

// Partition of indices 0..n-1; used to merge the per-CPU views of a group into one group even
// when the views disagree (asymmetric or partly missing sysfs files).
class UnionFind {
public:
    explicit UnionFind(size_t size)
        : m_parent(size)
    {
        std::iota(m_parent.begin(), m_parent.end(), 0u);
    }
    u32 find(u32 x)
    {
        while (m_parent[x] != x)
            x = m_parent[x] = m_parent[m_parent[x]];
        return x;
    }
    void unite(u32 a, u32 b) { m_parent[find(a)] = find(b); }

private:
    std::vector<u32> m_parent;
};

// Groups CPU indices by representative, returns for each CPU index its group number, groups being
// numbered by their lowest CPU (CPUs are sorted by id).
std::vector<u32> number_groups(UnionFind& groups, size_t count, u32& group_count)
{
    std::map<u32, u32> number_of_root;
    std::vector<u32> result(count);
    for (u32 i = 0; i < count; ++i) {
        auto [it, inserted] = number_of_root.try_emplace(groups.find(i), u32(number_of_root.size()));
        result[i] = it->second;
    }
    group_count = u32(number_of_root.size());
    return result;
}

} // namespace

ErrorOr<Topology> Topology::build(std::vector<CpuFacts> cpus, std::vector<NodeFacts> nodes, CpuSet offline,
    CpuSet isolated)
{
    if (cpus.empty())
        return make_error("no online CPU found");
    std::sort(cpus.begin(), cpus.end(), [](auto const& a, auto const& b) { return a.id < b.id; });
    Topology topology;
    for (size_t i = 0; i < cpus.size(); ++i) {
        if (i > 0 && cpus[i].id == cpus[i - 1].id)
            return make_error(fmt::format("CPU {} listed twice", cpus[i].id));
        topology.m_online.add(cpus[i].id);
    }
    topology.m_index.assign(cpus.back().id + 1, -1);
    for (size_t i = 0; i < cpus.size(); ++i)
        topology.m_index[cpus[i].id] = i32(i);
    auto const& online = topology.m_online;
    topology.m_offline = offline - online;
    topology.m_isolated = isolated & online;
    size_t const count = cpus.size();
    auto index_of = [&](u32 id) { return u32(topology.m_index[id]); };
    // Unites CPU i with the online members of `set` that satisfy `same_group`.
    auto unite_with = [&](UnionFind& groups, u32 i, CpuSet const& set, auto same_group) {
        for (u32 other : (set & online).to_vector()) {
            if (same_group(index_of(other)))
                groups.unite(i, index_of(other));
        }
    };

    // Packages: the physical package id when known, else the package sibling sets.
    UnionFind package_groups(count);
    std::map<i32, u32> first_with_id;
    for (u32 i = 0; i < count; ++i) {
        if (cpus[i].package_id >= 0) {
            auto [it, inserted] = first_with_id.try_emplace(cpus[i].package_id, i);
            package_groups.unite(i, it->second);
        } else if (!cpus[i].package_cpus.empty()) {
            unite_with(package_groups, i, cpus[i].package_cpus, [&](u32 j) { return cpus[j].package_id < 0; });
        } else {
            // Nothing known at all: such CPUs share one package.
            auto [it, inserted] = first_with_id.try_emplace(-1, i);
            package_groups.unite(i, it->second);
        }
    }
    u32 package_count = 0;
    auto package_of = number_groups(package_groups, count, package_count);

    // Cores: SMT sibling sets, never across packages.
    UnionFind core_groups(count);
    for (u32 i = 0; i < count; ++i)
        unite_with(core_groups, i, cpus[i].core_cpus, [&](u32 j) { return package_of[j] == package_of[i]; });
    u32 core_count = 0;
    auto core_of = number_groups(core_groups, count, core_count);

    // Last-level caches: CPUs that share their LLC; CPUs without cache information share one domain
    // per package, the closest stand-in the kernel offers.
    UnionFind llc_groups(count);
    std::vector<i32> nocache_of_package(package_count, -1);
    for (u32 i = 0; i < count; ++i) {
        if (cpus[i].llc_cpus.empty()) {
            topology.m_cache_info = false;
            i32& first = nocache_of_package[package_of[i]];
            if (first < 0)
                first = i32(i);
            llc_groups.unite(i, u32(first));
        } else {
            unite_with(llc_groups, i, cpus[i].llc_cpus, [&](u32 j) { return !cpus[j].llc_cpus.empty(); });
        }
    }
    u32 llc_count = 0;
    auto llc_of = number_groups(llc_groups, count, llc_count);

    // NUMA nodes, by os id; a kernel without NUMA gets one node.
    std::sort(nodes.begin(), nodes.end(), [](auto const& a, auto const& b) { return a.os_id < b.os_id; });
    if (nodes.empty())
        nodes.push_back(NodeFacts { 0, online, {} });
    std::vector<u32> node_of(count, 0);
    for (u32 n = u32(nodes.size()); n-- > 0;) {
        for (u32 id : (nodes[n].cpus & online).to_vector())
            node_of[index_of(id)] = n;
    }
    bool distances_valid = std::all_of(nodes.begin(), nodes.end(), [&](auto const& node) { return node.distances.size() == nodes.size(); });
    topology.m_distances.assign(nodes.size(), std::vector<u32>(nodes.size(), 20));
    for (u32 a = 0; a < nodes.size(); ++a) {
        for (u32 b = 0; b < nodes.size(); ++b)
            topology.m_distances[a][b] = distances_valid ? nodes[a].distances[b] : (a == b ? 10 : 20);
    }

    topology.m_packages.resize(package_count);
    topology.m_cores.resize(core_count);
    topology.m_llcs.resize(llc_count);
    for (auto const& node : nodes)
        topology.m_nodes.push_back(NumaNode { node.os_id, {} });
    for (u32 i = 0; i < count; ++i) {
        u32 id = cpus[i].id;
        auto& package = topology.m_packages[package_of[i]];
        package.cpus.add(id);
        package.os_id = cpus[i].package_id;
        auto& core = topology.m_cores[core_of[i]];
        if (core.threads.empty()) {
            core.package = package_of[i];
            core.llc = llc_of[i];
            core.node = node_of[i];
        }
        core.cpus.add(id);
        core.threads.push_back(id);
        auto& llc = topology.m_llcs[llc_of[i]];
        if (llc.cpus.empty()) {
            llc.package = package_of[i];
            llc.node = node_of[i];
        }
        llc.cpus.add(id);
        llc.level = std::max(llc.level, cpus[i].llc_level);
        topology.m_nodes[node_of[i]].cpus.add(id);
        u32 thread = u32(core.threads.size() - 1);
        topology.m_cpus.push_back(Cpu { id, package_of[i], core_of[i], llc_of[i], node_of[i], thread });
    }
    for (u32 c = 0; c < core_count; ++c)
        topology.m_llcs[topology.m_cores[c].llc].cores.push_back(c);
    return topology;
}

std::optional<u32> Topology::index_of(u32 id) const
{
    if (id >= m_index.size() || m_index[id] < 0)
        return std::nullopt;
    return u32(m_index[id]);
}

u32 Topology::max_threads_per_core() const
{
    size_t most = 1;
    for (auto const& core : m_cores)
        most = std::max(most, core.threads.size());
    return u32(most);
}

} // namespace kasou::sched
