// kasou cores: the host's CPU topology and the core-group placement simulator.

#include <cstdio>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "sched/core_allocator.h"
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
    unsigned events { 3000 };
};

int fail(Error const& error)
{
    fmt::print(stderr, "kasou cores: {}\n", error.to_string());
    return 1;
}

} // namespace

void add_cores_command(CLI::App& app, GlobalOptions const&, Action& action)
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
}

} // namespace kasou::cmd
