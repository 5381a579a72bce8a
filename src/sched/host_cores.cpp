#include "sched/host_cores.h"

#include <set>

#include <fmt/format.h>

#include "base/try.h"
#include "sched/sysfs_source.h"

namespace kasou::sched {

HostCores::HostCores(std::unique_ptr<Topology> topology, HostCoresOptions const& options)
    : m_topology(std::move(topology))
    , m_allocator(*m_topology, AllocatorOptions { options.policy, options.housekeeping_cores })
    , m_rebalancer(m_allocator, m_lock, options.rebalancer)
{
}

HostCores::~HostCores() { m_rebalancer.stop(); }

ErrorOr<std::unique_ptr<HostCores>> HostCores::open(HostCoresOptions options)
{
    auto topology = std::make_unique<Topology>(TRY(load_topology(options.sysfs)));
    if (options.housekeeping_cores >= topology->cores().size())
        return make_error(fmt::format("cannot keep {} housekeeping cores on a host with {}", options.housekeeping_cores,
            topology->cores().size()));
    return std::unique_ptr<HostCores>(new HostCores(std::move(topology), options));
}

VmPlacement HostCores::placement_locked(unsigned id) const
{
    auto const* group = m_allocator.group(id);
    VmPlacement placement { id, group->cpus, m_allocator.guest_topology(id), {} };
    std::set<unsigned> nodes;
    for (unsigned cpu : group->cpus)
        nodes.insert(m_topology->numa_nodes()[m_topology->cpu(cpu).node].os_id);
    placement.nodes.assign(nodes.begin(), nodes.end());
    return placement;
}

ErrorOr<VmPlacement> HostCores::allocate(GroupRequest const& request)
{
    std::lock_guard guard(m_lock);
    unsigned id = TRY(m_allocator.allocate(request));
    return placement_locked(id);
}

ErrorOr<VmPlacement> HostCores::allocate_list(CpuSet const& cpus)
{
    std::lock_guard guard(m_lock);
    unsigned id = TRY(m_allocator.allocate_exact(cpus));
    return placement_locked(id);
}

ErrorOr<VmPlacement> HostCores::allocate_for_run(unsigned vcpus, std::string_view cores)
{
    if (cores == "auto")
        return allocate(GroupRequest { vcpus, Sharing::Dedicated, true });
    auto cpus = CpuSet::parse_list(cores);
    if (!cpus)
        return tl::unexpected(cpus.error().with_prefix("--cores"));
    if (cpus->count() != vcpus)
        return make_error(fmt::format("--cores {} names {} CPUs for {} vCPUs", cores, cpus->count(), vcpus));
    return allocate_list(*cpus);
}

void HostCores::release(unsigned id)
{
    m_rebalancer.remove_group(id);
    std::lock_guard guard(m_lock);
    m_allocator.release(id);
}

ErrorOr<VmPlacement> HostCores::placement(unsigned id)
{
    std::lock_guard guard(m_lock);
    if (!m_allocator.group(id))
        return make_error(ErrorKind::NotFound, fmt::format("no core group {}", id));
    return placement_locked(id);
}

ErrorOr<void> HostCores::watch(unsigned id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits)
{
    auto mover = std::make_unique<AffinityMover>(tids);
    return watch(id, pid, std::move(tids), limits, std::move(mover));
}

ErrorOr<void> HostCores::watch(unsigned id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits, std::unique_ptr<CpuMover> mover)
{
    TRY(m_rebalancer.add_group(id, pid, std::move(tids), limits, std::move(mover)));
    m_rebalancer.start();
    return {};
}

ErrorOr<void> HostCores::pin_current_thread(unsigned cpu) { return set_thread_affinity(0, CpuSet::of({ cpu })); }

} // namespace kasou::sched
