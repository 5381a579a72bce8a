#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "sched/cpu_set.h"

namespace kasou::sched {

// One online logical CPU (a hardware thread) and the indices of the objects that hold it.
struct Cpu {
    u32 id { 0 };      // the kernel's CPU number
    u32 package { 0 }; // index into Topology::packages()
    u32 core { 0 };    // index into Topology::cores()
    u32 llc { 0 };     // index into Topology::llc_domains()
    u32 node { 0 };    // index into Topology::numa_nodes()
    u32 thread { 0 };  // position among its core's threads, 0 for the first
};

struct Package {
    i32 os_id { -1 }; // physical_package_id, -1 when the kernel does not know it
    CpuSet cpus;
};

// A set of hardware threads that share one core's execution units (SMT siblings).
struct Core {
    CpuSet cpus;
    std::vector<u32> threads; // CPU ids, ascending
    u32 package { 0 };
    u32 llc { 0 };
    u32 node { 0 };
};

// The CPUs that share one last-level cache. `level` is 0 when the machine exported no cache
// information for these CPUs and the domain stands for their package instead.
struct LlcDomain {
    CpuSet cpus;
    u32 level { 0 };
    std::vector<u32> cores; // indices into Topology::cores()
    u32 package { 0 };
    u32 node { 0 }; // the node of its first CPU
};

struct NumaNode {
    u32 os_id { 0 };
    CpuSet cpus; // online CPUs only; empty for a memory-only node
};

// What a reader learned about one online CPU, before grouping. Each set is the group as seen from
// this CPU; the builder merges sets that overlap so the result is always a partition.
struct CpuFacts {
    u32 id { 0 };
    i32 package_id { -1 };
    CpuSet package_cpus; // empty if unknown
    CpuSet core_cpus;    // empty if unknown: the CPU is then a core of its own
    CpuSet llc_cpus;     // empty if no cache information
    u32 llc_level { 0 };
};

struct NodeFacts {
    u32 os_id { 0 };
    CpuSet cpus;
    std::vector<u32> distances; // to every node, in the order of the nodes vector; may be empty
};

// The host's processor topology: packages, NUMA nodes with distances, last-level-cache domains,
// cores and hardware threads, plus the CPUs that are present but offline and the isolated ones.
// Invariants: every online CPU belongs to exactly one package, core, LLC domain and NUMA node;
// objects are ordered by their lowest CPU (nodes by os_id); distances() is a full square matrix.
class Topology {
public:
    // Groups per-CPU facts into objects. `nodes` may be empty (a kernel without NUMA): then one
    // node holds every CPU. CPUs no node claims join the first node.
    static ErrorOr<Topology> build(std::vector<CpuFacts> cpus, std::vector<NodeFacts> nodes, CpuSet offline,
        CpuSet isolated);

    std::vector<Package> const& packages() const { return m_packages; }
    std::vector<NumaNode> const& numa_nodes() const { return m_nodes; }
    std::vector<LlcDomain> const& llc_domains() const { return m_llcs; }
    std::vector<Core> const& cores() const { return m_cores; }
    // Online CPUs, ascending by id.
    std::vector<Cpu> const& cpus() const { return m_cpus; }
    CpuSet const& online() const { return m_online; }
    CpuSet const& offline() const { return m_offline; }
    CpuSet const& isolated() const { return m_isolated; }

    // Index into cpus() of CPU `id`, if online.
    std::optional<u32> index_of(u32 id) const;
    Cpu const& cpu(u32 id) const { return m_cpus[*index_of(id)]; }
    // NUMA distance between two node indices (10 = local, as in the ACPI SLIT).
    u32 distance(u32 node_a, u32 node_b) const { return m_distances[node_a][node_b]; }
    // The largest number of threads in one core.
    u32 max_threads_per_core() const;
    // True when the last-level caches came from cache information for every CPU.
    bool has_cache_info() const { return m_cache_info; }

private:
    Topology() = default;

    std::vector<Package> m_packages;
    std::vector<NumaNode> m_nodes;
    std::vector<LlcDomain> m_llcs;
    std::vector<Core> m_cores;
    std::vector<Cpu> m_cpus;
    std::vector<i32> m_index; // CPU id -> index into m_cpus, -1 when offline
    std::vector<std::vector<u32>> m_distances;
    CpuSet m_online;
    CpuSet m_offline;
    CpuSet m_isolated;
    bool m_cache_info { true };
};

} // namespace kasou::sched
