#pragma once

#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/guest_topology.h"
#include "sched/topology.h"

namespace kasou::sched {

// How a group is placed. kasou: inside one last-level-cache domain when it fits (best fit), else
// inside one NUMA node (fewest caches), else on the nearest nodes. first-fit: the lowest-numbered
// free cores, what pinning by CPU number does. spread: round-robin over packages. packed: the
// Kubernetes static CPU manager's order: whole free packages first, then the fullest package's cores.
enum class PlacementPolicy { Kasou, FirstFit, Spread, Packed };
ErrorOr<PlacementPolicy> parse_policy(std::string_view name);
char const* policy_name(PlacementPolicy policy);

// dedicated: the group owns whole cores, no other group runs on them or on their SMT siblings.
// shared: the group's CPUs may also serve other shared groups, never dedicated ones.
enum class Sharing { Dedicated, Shared };

struct GroupRequest {
    u32 vcpus { 1 };
    Sharing sharing { Sharing::Dedicated };
    // Whether the group may use more than one hardware thread of a core. When false a dedicated
    // group still holds the whole core, and leaves the siblings idle.
    bool smt { true };
};

// A group of host CPUs given to one VM or container. cpus[i] is where vCPU i is pinned; a core's
// threads are consecutive so the guest can be told they are siblings. `held` also contains the idle
// siblings a dedicated group keeps to itself.
struct CoreGroup {
    u32 id { 0 };
    GroupRequest request;
    std::vector<u32> cpus;
    CpuSet held;
};

struct AllocatorOptions {
    PlacementPolicy policy { PlacementPolicy::Kasou };
    // Cores kept for the host (its daemons, I/O threads, interrupts); taken from the first cores.
    u32 housekeeping_cores { 0 };
};

// Hands out core groups on one topology and keeps track of who holds which core. Not thread-safe:
// callers serialize (the monitor holds one allocator behind its own lock). Invariants: a core is held
// by at most one dedicated group or is free, housekeeping or shared; a shared group only uses CPUs of
// cores that no dedicated group holds; group CPU lists never repeat a CPU.
class CoreAllocator {
public:
    CoreAllocator(Topology const& topology, AllocatorOptions options);

    // Places a new group; an error names why (not enough free cores, zero vCPUs).
    ErrorOr<u32> allocate(GroupRequest const& request);
    // A dedicated group on exactly these CPUs (a user's --cores list), in ascending order. Fails
    // if one is offline or its core is not free.
    ErrorOr<u32> allocate_exact(CpuSet const& cpus);
    void release(u32 id);
    // Marks the free cores that hold any of cpus as held outside this allocator (by another
    // process, see HostPlacements): allocate() passes them over until the next call, which
    // replaces the set (an empty set frees them again). Groups already placed stay where they are.
    void set_held_elsewhere(CpuSet const& cpus);
    // Every CPU the groups hold, the idle siblings of dedicated groups included.
    CpuSet held_cpus() const;
    // Changes a group's size to `vcpus`. Existing vCPUs keep their CPUs where the policy can (kasou
    // may move the group into one cache domain when the new size no longer fits where it is).
    // Returns how many vCPUs changed CPU.
    ErrorOr<u32> resize(u32 id, u32 vcpus);
    // kasou only: moves groups that span several cache domains into one when one now has room.
    // Returns how many vCPUs changed CPU.
    u32 compact();

    CoreGroup const* group(u32 id) const;
    std::map<u32, CoreGroup> const& groups() const { return m_groups; }
    Topology const& topology() const { return m_topology; }
    PlacementPolicy policy() const { return m_options.policy; }
    // The guest CPU topology that matches a group (for CPUID leaves 0xB / 0x1F and ACPI tables).
    GuestTopology guest_topology(u32 id) const;
    u32 free_cores() const { return m_free_cores; }
    // Free cores in the cache domain that has most of them.
    u32 largest_free_llc() const;

private:
    static constexpr i32 FREE = -1;
    static constexpr i32 HOUSEKEEPING = -2;
    static constexpr i32 SHARED = -3;    // used by shared groups only
    static constexpr i32 ELSEWHERE = -4; // held by another process (set_held_elsewhere)

    // Which free cores to take for `units` (threads, or cores when !smt); `near` are cores the group
    // already holds, whose cache domains kasou prefers.
    std::optional<std::vector<u32>> choose_cores(u32 units, bool smt, std::vector<u32> const& near) const;
    std::optional<std::vector<u32>> choose_kasou(u32 units, bool smt, std::vector<u32> const& near) const;
    std::optional<std::vector<u32>> choose_in_order(u32 units, bool smt, std::vector<u32> const& order) const;
    std::vector<u32> spread_order() const;
    std::vector<u32> packed_order(u32 units, bool smt) const;
    u32 units_of(u32 core, bool smt) const;
    void claim_core(u32 core, i32 owner);
    void take(CoreGroup& group, std::vector<u32> const& cores);
    void drop_core(u32 core);
    std::vector<u32> cpus_for(std::vector<u32> const& cores, GroupRequest const& request) const;
    std::vector<u32> cores_of(CoreGroup const& group) const;
    ErrorOr<u32> allocate_shared(CoreGroup& group);
    u32 relocate(CoreGroup& group, std::vector<u32> const& cores);

    Topology const& m_topology;
    AllocatorOptions m_options;
    std::vector<i32> m_core_owner;       // per core: group id, FREE, HOUSEKEEPING, SHARED or ELSEWHERE
    std::vector<u32> m_shared_users; // per core: shared groups using it
    std::vector<u32> m_llc_free;     // per LLC: free cores
    std::vector<u32> m_llc_free_threads;
    u32 m_free_cores { 0 };
    std::map<u32, CoreGroup> m_groups;
    u32 m_next_id { 1 };
};

} // namespace kasou::sched
