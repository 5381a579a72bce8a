#pragma once

// Core groups for a virtual machine monitor. How a VMM uses this header:
//
//   sched::HostCoresOptions options;
//   options.state_dir = state_dir;                                 // share the host with other kasou processes
//   auto cores = TRY(sched::HostCores::open(options));             // reads /sys once
//   auto group = TRY(cores->allocate({ .vcpus = 4 }));             // kasou policy, dedicated, SMT allowed,
//                                                                  // on cores no other kasou holds
//   // group.guest tells the guest's CPUID leaves 0xB/0x1F (and ACPI MADT/PPTT) how many threads
//   // per core and cores per package to report, so vCPUs 2k and 2k+1 are siblings exactly when the
//   // host CPUs group.cpus[2k] and group.cpus[2k+1] are.
//   // In vCPU thread i, before its first KVM_RUN:
//   TRY(sched::HostCores::pin_current_thread(group.cpus[i]));
//   // Once every vCPU thread exists, let the rebalancer resize the group while the VM runs:
//   TRY(cores->watch(group.id, getpid(), vcpu_tids, { .min_cpus = 2, .max_cpus = 8 }));
//   ...
//   cores->release(group.id);                                      // at VM shutdown: unwatch + free
//
// `kasou run --cpus N --cores auto|LIST` maps to allocate_for_run(N, "auto" or the list); a list is
// checked (online, free, N of them). Once watched, a group's size is its CPU count, no longer its
// vCPU count: the rebalancer grows or shrinks it within the limits and then gives every watched
// thread the whole group as its affinity (vCPUs float inside the group instead of 1:1 pinning).
// With more than one NUMA node, group.nodes lists where the guest's memory belongs (mbind it there).

#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "base/error.h"
#include "sched/core_allocator.h"
#include "sched/host_placements.h"
#include "sched/rebalancer.h"
#include "sched/topology.h"

namespace kasou::sched {

struct HostCoresOptions {
    std::string sysfs;  // "" for the live /sys; a captured tree for tests
    PlacementPolicy policy { PlacementPolicy::Kasou };
    u32 housekeeping_cores { 0 };
    RebalancerOptions rebalancer;
    // Where the host-wide placement record lives (HostPlacements under STATE_DIR/cores), so that
    // the kasou processes of one host do not place groups on the same CPUs; "" keeps no record
    // (a simulation, a test on a captured topology).
    std::string state_dir;
};

// What a VM got: its group id, where vCPU i runs (cpus[i]), the guest topology that matches, and
// the NUMA nodes (os ids) of those CPUs.
struct VmPlacement {
    u32 id { 0 };
    std::vector<u32> cpus;
    GuestTopology guest;
    std::vector<u32> nodes;
};

// The host's CPUs as one service: topology, allocator and rebalancer behind one lock, so vCPU
// threads, the monitor and the rebalancer thread can all use it. With a state directory, every
// allocation also consults and updates the host-wide record (HostPlacements): allocate() avoids the
// cores other live kasou processes hold, and only when too few are left does it share them, with a
// warning naming them; an explicit list is placed as given, with a warning if another process holds
// some of it. The record lists this process's held CPUs as of its last allocate or release (a
// rebalanced group's new CPUs show at the next one) and goes away with the object. Lock order: the rebalancer's own
// lock, then m_lock (which guards the allocator); HostCores never calls into the rebalancer while
// holding m_lock.
class HostCores {
public:
    static ErrorOr<std::unique_ptr<HostCores>> open(HostCoresOptions options);
    ~HostCores();

    ErrorOr<VmPlacement> allocate(GroupRequest const& request);
    // `kasou run --cores 2,3,6-7`: exactly those CPUs, as a dedicated group.
    ErrorOr<VmPlacement> allocate_list(CpuSet const& cpus);
    // `kasou run --cpus N --cores auto|LIST`: "auto" places N dedicated vCPUs with the policy; a
    // list must name exactly N CPUs.
    ErrorOr<VmPlacement> allocate_for_run(u32 vcpus, std::string_view cores);
    void release(u32 id);
    ErrorOr<VmPlacement> placement(u32 id);

    // Starts watching a group's threads with an AffinityMover (the rebalancer thread is started on
    // the first call).
    ErrorOr<void> watch(u32 id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits);
    // Same with any mover (a container's CgroupCpusetMover).
    ErrorOr<void> watch(u32 id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits, std::unique_ptr<CpuMover> mover);

    static ErrorOr<void> pin_current_thread(u32 cpu);
    Topology const& topology() const { return *m_topology; }

private:
    HostCores(std::unique_ptr<Topology> topology, HostCoresOptions const& options);
    VmPlacement placement_locked(u32 id) const;
    // Runs allocate (under m_lock) against the host-wide record, see the class comment.
    ErrorOr<VmPlacement> place(bool avoid_others, std::function<ErrorOr<u32>()> const& allocate);

    std::unique_ptr<Topology> m_topology;
    std::mutex m_lock;
    CoreAllocator m_allocator;
    Rebalancer m_rebalancer;
    std::optional<HostPlacements> m_record; // guarded by m_lock
};

} // namespace kasou::sched
