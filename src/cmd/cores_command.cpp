// kasou cores: the host's CPU topology and the core-group placement simulator.

#include <csignal>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "sched/core_allocator.h"
#include "sched/host_cores.h"
#include "sched/host_placements.h"
#include "sched/simulator.h"
#include "sched/sysfs_source.h"
#include "sched/topology_report.h"

namespace kasou::cmd {

namespace {

struct CoresOptions {
    std::string sysfs;
    bool json { false };
    std::string policy { "kasou" };
    u64 seed { 1 };
    u32 events { 3000 };
    u32 cpus { 1 };
    std::string cores { "auto" };
};

int fail(Error const& error)
{
    fmt::print(stderr, "kasou cores: {}\n", error.to_string());
    return 1;
}

// `kasou cores reserve`: places a group as `kasou run --cores` would, records it, prints it and holds
// it until SIGINT or SIGTERM.
int reserve(std::string const& state_dir, CoresOptions const& options)
{
    auto policy = sched::parse_policy(options.policy);
    if (!policy)
        return fail(policy.error());
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    sched::HostCoresOptions host_options;
    host_options.sysfs = options.sysfs;
    host_options.state_dir = state_dir;
    host_options.policy = *policy;
    auto host = sched::HostCores::open(host_options);
    if (!host)
        return fail(host.error());
    auto placement = (*host)->allocate_for_run(options.cpus, options.cores);
    if (!placement)
        return fail(placement.error());
    fmt::print("reserved host CPUs {} (pid {})\n", fmt::join(placement->cpus, ","), ::getpid());
    std::fflush(stdout);
    int signal = 0;
    ::sigwait(&stop, &signal);
    (*host)->release(placement->id);
    return 0;
}

int list_placements(std::string const& state_dir, bool json)
{
    auto record = sched::HostPlacements::open(state_dir);
    if (!record)
        return fail(record.error());
    auto entries = record->list();
    if (!entries)
        return fail(entries.error());
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (auto const& entry : *entries)
            out.push_back({ { "pid", entry.process.pid }, { "start_time", entry.process.start_time }, { "cpus", entry.cpus.to_list() } });
        fmt::print("{}\n", out.dump(2));
        return 0;
    }
    fmt::print("{:<8} {}\n", "PID", "CPUS");
    for (auto const& entry : *entries)
        fmt::print("{:<8} {}\n", entry.process.pid, entry.cpus.to_list());
    return 0;
}

} // namespace

void add_cores_command(CLI::App& app, GlobalOptions const& global, Action& action)
{
    auto options = std::make_shared<CoresOptions>();
    auto* cores = app.add_subcommand("cores", "Host CPU topology and core groups for VMs and containers");
    cores->require_subcommand(1);

    auto* topology = cores->add_subcommand("topology", "Show packages, NUMA nodes, cache domains, cores and threads");
    topology->add_option("--sysfs", options->sysfs, "A captured sysfs tree (directory or .tar.bz2) instead of /sys");
    topology->add_flag("--json", options->json, "Print one JSON object");
    topology->callback([options, &action] {
        action = [options] {
            auto loaded = sched::load_topology(options->sysfs);
            if (!loaded)
                return fail(loaded.error());
            if (options->json)
                fmt::print("{}\n", sched::topology_to_json(*loaded).dump(2));
            else
                fmt::print("{}", sched::topology_to_text(*loaded));
            return 0;
        };
    });

    auto* simulate = cores->add_subcommand("simulate", "Replay a seeded VM workload with one placement policy");
    simulate->add_option("--sysfs", options->sysfs, "A captured sysfs tree (directory or .tar.bz2) instead of /sys");
    simulate->add_option("--policy", options->policy, "kasou, first-fit, spread or packed")->capture_default_str();
    simulate->add_option("--seed", options->seed, "Seed of the synthetic workload")->capture_default_str();
    simulate->add_option("--events", options->events, "Arrivals, departures and resizes to replay")->capture_default_str();
    simulate->add_flag("--json", options->json, "Print one JSON object");
    simulate->callback([options, &action] {
        action = [options] {
            auto policy = sched::parse_policy(options->policy);
            if (!policy)
                return fail(policy.error());
            auto loaded = sched::load_topology(options->sysfs);
            if (!loaded)
                return fail(loaded.error());
            auto result = sched::simulate(*loaded, sched::SimulationOptions { *policy, options->seed, options->events });
            auto json = sched::simulation_to_json(result);
            json["policy"] = options->policy;
            json["seed"] = options->seed;
            if (options->json) {
                fmt::print("{}\n", json.dump(2));
                return 0;
            }
            fmt::print("policy {}, seed {}: {} requests, {} rejected, {} migrations\n", options->policy, options->seed,
                result.requests, result.rejected, result.migrations);
            fmt::print("  VMs across LLC domains: {:.1f} %\n  VMs across NUMA nodes:  {:.1f} %\n", 100 * result.cross_llc_share,
                100 * result.cross_numa_share);
            fmt::print("  coherence cost per VM:  {:.2f}\n  fragmentation:          {:.3f}\n", result.coherence_cost,
                result.fragmentation);
            return 0;
        };
    });

    auto* placements = cores->add_subcommand("placements", "List the host CPUs each running kasou process holds");
    placements->add_flag("--json", options->json, "Print a JSON array");
    placements->footer("The record lives in STATE_DIR/cores, one file per process; entries of processes that are gone\n"
                       "are removed whenever the record is read.");
    placements->callback([options, &global, &action] { action = [options, &global] { return list_placements(global.state_dir, options->json); }; });

    auto* reserve_command = cores->add_subcommand("reserve", "Hold a core group for a program kasou does not start, until SIGINT or SIGTERM");
    reserve_command->add_option("--cpus", options->cpus, "How many CPUs")->required();
    reserve_command->add_option("--cores", options->cores, "auto, or the exact list (e.g. 2,3,6-7)")->capture_default_str();
    reserve_command->add_option("--policy", options->policy, "kasou, first-fit, spread or packed")->capture_default_str();
    reserve_command->add_option("--sysfs", options->sysfs, "A captured sysfs tree (directory or .tar.bz2) instead of /sys");
    reserve_command->footer("Example: kasou cores reserve --cpus 4 &   then pin the program to the CPUs it prints.\n"
                            "The group is recorded like a `kasou run --cores` one, so other kasou processes avoid it.");
    reserve_command->callback([options, &global, &action] { action = [options, &global] { return reserve(global.state_dir, *options); }; });
}

} // namespace kasou::cmd
