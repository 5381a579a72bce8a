#pragma once

#include <string>
#include <vector>

#include <sys/types.h>

#include "base/error.h"
#include "sched/cpu_set.h"

namespace kasou::sched {

// Where a group's work runs, as the rebalancer hands it to a mover.
struct GroupPlacement {
    CpuSet cpus;
    std::vector<u32> nodes; // NUMA node os ids of those CPUs, for memory placement
};

// The "apply a move" step of the rebalancer: makes the threads of one group run on new CPUs. One
// implementation per mechanism; the rebalancer never knows which one it drives.
class CpuMover {
public:
    virtual ~CpuMover() = default;
    virtual ErrorOr<void> apply(GroupPlacement const& placement) = 0;
};

// Moves a fixed set of threads (a VM's vCPU threads) with sched_setaffinity. Memory stays where the
// monitor bound it; a VMM that wants it to follow calls bind_memory_to_nodes (memory_binding.h)
// on guest RAM.
class AffinityMover final : public CpuMover {
public:
    explicit AffinityMover(std::vector<pid_t> tids)
        : m_tids(std::move(tids))
    {
    }
    void set_threads(std::vector<pid_t> tids) { m_tids = std::move(tids); }
    ErrorOr<void> apply(GroupPlacement const& placement) override;

private:
    std::vector<pid_t> m_tids;
};

// Moves a container: writes cpuset.mems then cpuset.cpus of its cgroup directory. The file names
// are the same in cgroup v1 (cpuset hierarchy) and v2; on v2 the parent must delegate the cpuset
// controller, which is enabled through cgroup.subtree_control when it is not. Without nodes to
// place memory on, an empty cpuset.mems (a new cgroup) inherits the parent's.
class CgroupCpusetMover final : public CpuMover {
public:
    explicit CgroupCpusetMover(std::string cgroup_dir)
        : m_dir(std::move(cgroup_dir))
    {
    }
    ErrorOr<void> apply(GroupPlacement const& placement) override;

private:
    std::string m_dir;
};

// sched_setaffinity for one thread (0: the caller) onto `cpus`.
ErrorOr<void> set_thread_affinity(pid_t tid, CpuSet const& cpus);
ErrorOr<CpuSet> thread_affinity(pid_t tid);

} // namespace kasou::sched
