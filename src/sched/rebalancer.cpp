#include "sched/rebalancer.h"

#include <set>

#include <spdlog/spdlog.h>

#include "base/try.h"

namespace kasou::sched {

Rebalancer::Rebalancer(CoreAllocator& allocator, std::mutex& allocator_lock, RebalancerOptions options)
    : m_allocator(allocator)
    , m_allocator_lock(allocator_lock)
    , m_options(options)
{
}

Rebalancer::~Rebalancer() { stop(); }

ErrorOr<void> Rebalancer::add_group(u32 id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits, std::unique_ptr<CpuMover> mover)
{
    if (limits.min_cpus == 0 || limits.min_cpus > limits.max_cpus)
        return make_error(fmt::format("bad limits for group {}: min {} max {}", id, limits.min_cpus, limits.max_cpus));
    if (!mover)
        return make_error(ErrorKind::Internal, "a watched group needs a mover");
    {
        std::lock_guard allocator_guard(m_allocator_lock);
        if (!m_allocator.group(id))
            return make_error(ErrorKind::NotFound, fmt::format("no core group {}", id));
    }
    std::lock_guard guard(m_lock);
    m_groups[id] = Watched { pid, std::move(tids), limits, std::move(mover), std::nullopt, {}, 0, 0, 0 };
    return {};
}

void Rebalancer::remove_group(u32 id)
{
    std::lock_guard guard(m_lock);
    m_groups.erase(id);
}

GroupPlacement Rebalancer::placement_of(CoreGroup const& group) const
{
    GroupPlacement placement;
    std::set<u32> nodes;
    auto const& topology = m_allocator.topology();
    for (u32 cpu : group.cpus) {
        placement.cpus.add(cpu);
        nodes.insert(topology.numa_nodes()[topology.cpu(cpu).node].os_id);
    }
    // Memory follows the CPUs only where there is a choice to make.
    if (topology.numa_nodes().size() > 1)
        placement.nodes.assign(nodes.begin(), nodes.end());
    return placement;
}

Rebalancer::Samples Rebalancer::sample() const
{
    Samples samples;
    std::lock_guard guard(m_lock);
    for (auto const& [id, watched] : m_groups) {
        auto& times = samples[id];
        for (pid_t tid : watched.tids)
            times.push_back(read_schedstat(watched.pid, tid).value_or(ThreadTimes {}));
    }
    return samples;
}

std::vector<RebalanceDecision> Rebalancer::step(Clock::time_point now, Samples const& samples)
{
    std::vector<RebalanceDecision> decisions;
    std::lock_guard guard(m_lock);
    for (auto& [id, watched] : m_groups) {
        auto it = samples.find(id);
        if (it == samples.end() || it->second.size() != watched.tids.size())
            continue;
        auto const& current = it->second;
        auto previous_time = std::exchange(watched.last_time, now);
        auto previous = std::exchange(watched.last, current);
        if (!previous_time || previous.size() != current.size() || now <= *previous_time)
            continue;
        double elapsed = double(std::chrono::duration_cast<std::chrono::nanoseconds>(now - *previous_time).count());
        double run = 0;
        double wait = 0;
        for (size_t i = 0; i < current.size(); ++i) {
            // A counter that went backwards belongs to a new thread with a reused id: skip it.
            if (current[i].run_ns < previous[i].run_ns || current[i].wait_ns < previous[i].wait_ns)
                continue;
            run += double(current[i].run_ns - previous[i].run_ns);
            wait += double(current[i].wait_ns - previous[i].wait_ns);
        }
        std::unique_lock allocator_guard(m_allocator_lock);
        auto const* group = m_allocator.group(id);
        if (!group)
            continue;
        u32 cpus = u32(group->cpus.size());
        double wait_ratio = wait / (elapsed * double(current.size()));
        double busy_ratio = run / (elapsed * double(cpus));
        bool starved = wait_ratio > m_options.grow_wait_ratio;
        bool idle = busy_ratio < m_options.shrink_busy_ratio && wait_ratio < m_options.grow_wait_ratio / 4;
        if (watched.cooldown > 0) {
            // Right after a move the counters describe the old placement: gather fresh evidence.
            --watched.cooldown;
            continue;
        }
        watched.starved_streak = starved ? watched.starved_streak + 1 : 0;
        watched.idle_streak = idle ? watched.idle_streak + 1 : 0;
        u32 target = cpus;
        if (watched.starved_streak >= m_options.hysteresis && cpus < watched.limits.max_cpus)
            target = cpus + 1;
        else if (watched.idle_streak >= m_options.hysteresis && cpus > watched.limits.min_cpus)
            target = cpus - 1;
        if (target == cpus)
            continue;
        auto resized = m_allocator.resize(id, target);
        if (!resized) {
            spdlog::debug("rebalancer: group {} stays at {} CPUs: {}", id, cpus, resized.error().to_string());
            continue;
        }
        auto placement = placement_of(*m_allocator.group(id));
        allocator_guard.unlock();
        if (auto applied = watched.mover->apply(placement); !applied)
            spdlog::warn("rebalancer: moving group {} failed: {}", id, applied.error().to_string());
        watched.starved_streak = 0;
        watched.idle_streak = 0;
        watched.cooldown = m_options.cooldown;
        decisions.push_back(RebalanceDecision { id, cpus, target });
    }
    return decisions;
}

void Rebalancer::start()
{
    std::lock_guard guard(m_lock);
    if (m_thread.joinable())
        return;
    m_stopping = false;
    m_thread = std::thread([this] { run(); });
}

void Rebalancer::stop()
{
    {
        std::lock_guard guard(m_lock);
        m_stopping = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable())
        m_thread.join();
}

void Rebalancer::run()
{
    for (;;) {
        {
            std::unique_lock guard(m_lock);
            if (m_wake.wait_for(guard, m_options.interval, [this] { return m_stopping; }))
                return;
        }
        step(Clock::now(), sample());
    }
}

} // namespace kasou::sched
