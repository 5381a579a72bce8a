#include "sched/host_cores.h"

#include <set>

#include <fmt/format.h>

#include "base/log.h"
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
    auto cores = std::unique_ptr<HostCores>(new HostCores(std::move(topology), options));
    if (!options.state_dir.empty())
        cores->m_record = TRY(HostPlacements::open(options.state_dir));
    return cores;
}

VmPlacement HostCores::placement_locked(u32 id) const
{
    auto const* group = m_allocator.group(id);
    VmPlacement placement { id, group->cpus, m_allocator.guest_topology(id), {} };
    std::set<u32> nodes;
    for (u32 cpu : group->cpus)
        nodes.insert(m_topology->numa_nodes()[m_topology->cpu(cpu).node].os_id);
    placement.nodes.assign(nodes.begin(), nodes.end());
    return placement;
}

ErrorOr<VmPlacement> HostCores::place(bool avoid_others, std::function<ErrorOr<u32>()> const& allocate)
{
    if (!m_record)
        return placement_locked(TRY(allocate()));
    std::optional<u32> placed;
    auto recorded = m_record->update([&](std::vector<PlacementEntry> const& others) -> ErrorOr<CpuSet> {
        CpuSet elsewhere;
        for (auto const& entry : others)
            elsewhere = elsewhere | entry.cpus;
        auto id = [&]() -> ErrorOr<u32> {
            if (!avoid_others || elsewhere.empty())
                return allocate();
            m_allocator.set_held_elsewhere(elsewhere);
            auto apart = allocate();
            m_allocator.set_held_elsewhere({});
            return apart ? apart : allocate();
        }();
        placed = TRY(id);
        CpuSet shared = m_allocator.group(*placed)->held & elsewhere;
        if (!shared.empty()) {
            std::string holders;
            for (auto const& entry : others) {
                if (entry.cpus.intersects(shared))
                    holders += fmt::format("{}pid {} ({})", holders.empty() ? "" : ", ", entry.process.pid, (entry.cpus & shared).to_list());
            }
            spdlog::warn("host CPUs {} are shared with other kasou processes: {}", shared.to_list(), holders);
        }
        return m_allocator.held_cpus();
    });
    if (!recorded) {
        if (placed)
            m_allocator.release(*placed);
        return tl::unexpected(recorded.error());
    }
    return placement_locked(*placed);
}

ErrorOr<VmPlacement> HostCores::allocate(GroupRequest const& request)
{
    std::lock_guard guard(m_lock);
    return place(true, [&] { return m_allocator.allocate(request); });
}

ErrorOr<VmPlacement> HostCores::allocate_list(CpuSet const& cpus)
{
    std::lock_guard guard(m_lock);
    return place(false, [&] { return m_allocator.allocate_exact(cpus); });
}

ErrorOr<VmPlacement> HostCores::allocate_for_run(u32 vcpus, std::string_view cores)
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

void HostCores::release(u32 id)
{
    m_rebalancer.remove_group(id);
    std::lock_guard guard(m_lock);
    m_allocator.release(id);
    if (!m_record)
        return;
    if (auto recorded = m_record->update([&](auto const&) -> ErrorOr<CpuSet> { return m_allocator.held_cpus(); }); !recorded)
        spdlog::warn("placement record {}: {}", m_record->directory(), recorded.error().to_string());
}

ErrorOr<VmPlacement> HostCores::placement(u32 id)
{
    std::lock_guard guard(m_lock);
    if (!m_allocator.group(id))
        return make_error(ErrorKind::NotFound, fmt::format("no core group {}", id));
    return placement_locked(id);
}

ErrorOr<void> HostCores::watch(u32 id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits)
{
    auto mover = std::make_unique<AffinityMover>(tids);
    return watch(id, pid, std::move(tids), limits, std::move(mover));
}

ErrorOr<void> HostCores::watch(u32 id, pid_t pid, std::vector<pid_t> tids, GroupLimits limits, std::unique_ptr<CpuMover> mover)
{
    TRY(m_rebalancer.add_group(id, pid, std::move(tids), limits, std::move(mover)));
    m_rebalancer.start();
    return {};
}

ErrorOr<void> HostCores::pin_current_thread(u32 cpu) { return set_thread_affinity(0, CpuSet::of({ cpu })); }

} // namespace kasou::sched
