#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "sched/core_allocator.h"
#include "sched/cpu_mover.h"
#include "sched/schedstat.h"

namespace kasou::sched {

struct RebalancerOptions {
    // A group is starved when its threads spent more than this share of an interval runnable but
    // waiting for a CPU.
    double grow_wait_ratio { 0.25 };
    // A group is idle when its threads ran less than this share of its CPUs' time and hardly waited.
    double shrink_busy_ratio { 0.30 };
    // Intervals in a row a condition must hold before the group changes size, and intervals after a
    // change before the next one: together they keep groups from flapping.
    u32 hysteresis { 3 };
    u32 cooldown { 3 };
    std::chrono::milliseconds interval { 200 };
};

// Bounds the rebalancer keeps a group within, in CPUs.
struct GroupLimits {
    u32 min_cpus { 1 };
    u32 max_cpus { 1 };
};

struct RebalanceDecision {
    u32 group { 0 };
    u32 old_cpus { 0 };
    u32 new_cpus { 0 };
};

// Watches the threads of registered core groups and resizes the groups: grows a starved one, shrinks
// an idle one, within its limits, then has the group's CpuMover apply the new placement. Decisions
// use deltas of /proc/PID/task/TID/schedstat between two samples. `step` makes one round from given
// samples and a given time (tests drive it with a fake clock); `start` runs rounds on a thread of its
// own every interval. Lock order: the allocator mutex passed in is taken inside m_lock, never the
// other way round; the allocator must only be used under that mutex while the rebalancer runs.
class Rebalancer {
public:
    using Clock = std::chrono::steady_clock;
    using Samples = std::map<u32, std::vector<ThreadTimes>>; // group id -> one per thread

    Rebalancer(CoreAllocator& allocator, std::mutex& allocator_lock, RebalancerOptions options);
    ~Rebalancer();
    Rebalancer(Rebalancer const&) = delete;
    Rebalancer& operator=(Rebalancer const&) = delete;

    // Watches group `id` (already allocated), whose threads are `tids` of process `pid`.
    ErrorOr<void> add_group(u32 id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits, std::unique_ptr<CpuMover> mover);
    void remove_group(u32 id);

    // One round with the given per-group samples taken at `now`. Groups missing from `samples` are
    // skipped. Returns the resizes it applied.
    std::vector<RebalanceDecision> step(Clock::time_point now, Samples const& samples);
    // Reads every watched thread's schedstat.
    Samples sample() const;

    void start();
    void stop();

private:
    struct Watched {
        pid_t pid;
        std::vector<pid_t> tids;
        GroupLimits limits;
        std::unique_ptr<CpuMover> mover;
        std::optional<Clock::time_point> last_time;
        std::vector<ThreadTimes> last;
        u32 starved_streak { 0 };
        u32 idle_streak { 0 };
        u32 cooldown { 0 };
    };
    GroupPlacement placement_of(CoreGroup const& group) const;
    void run();

    CoreAllocator& m_allocator;
    std::mutex& m_allocator_lock;
    RebalancerOptions m_options;
    mutable std::mutex m_lock;
    std::map<u32, Watched> m_groups;
    std::thread m_thread;
    std::condition_variable m_wake;
    bool m_stopping { false };
};

} // namespace kasou::sched
