#include "sched/topology_report.h"

#include <fmt/format.h>

namespace kasou::sched {

namespace {

std::string or_none(CpuSet const& set) { return set.empty() ? "none" : set.to_list(); }

std::string cache_name(LlcDomain const& llc) { return llc.level ? fmt::format("L{}", llc.level) : "package (no cache info)"; }

} // namespace

nlohmann::ordered_json topology_to_json(Topology const& topology)
{
    nlohmann::ordered_json json;
    json["packages"] = topology.packages().size();
    json["numa_nodes"] = topology.numa_nodes().size();
    json["llc_domains"] = topology.llc_domains().size();
    json["cores"] = topology.cores().size();
    json["threads"] = topology.cpus().size();
    json["online_cpus"] = topology.online().to_list();
    json["offline_cpus"] = topology.offline().to_list();
    json["isolated_cpus"] = topology.isolated().to_list();
    json["max_threads_per_core"] = topology.max_threads_per_core();
    json["cache_info"] = topology.has_cache_info();
    auto& packages = json["package_list"] = nlohmann::ordered_json::array();
    for (auto const& package : topology.packages())
        packages.push_back({ { "physical_id", package.os_id }, { "cpus", package.cpus.to_list() } });
    auto& nodes = json["node_list"] = nlohmann::ordered_json::array();
    for (u32 n = 0; n < topology.numa_nodes().size(); ++n) {
        auto distances = nlohmann::ordered_json::array();
        for (u32 m = 0; m < topology.numa_nodes().size(); ++m)
            distances.push_back(topology.distance(n, m));
        auto const& node = topology.numa_nodes()[n];
        nodes.push_back({ { "id", node.os_id }, { "cpus", node.cpus.to_list() }, { "distances", distances } });
    }
    auto& llcs = json["llc_list"] = nlohmann::ordered_json::array();
    for (auto const& llc : topology.llc_domains()) {
        llcs.push_back({ { "level", llc.level }, { "cpus", llc.cpus.to_list() }, { "package", llc.package },
            { "node", topology.numa_nodes()[llc.node].os_id }, { "cores", llc.cores.size() } });
    }
    auto& cores = json["core_list"] = nlohmann::ordered_json::array();
    for (auto const& core : topology.cores())
        cores.push_back(core.threads);
    return json;
}

std::string topology_to_text(Topology const& topology)
{
    std::string text = fmt::format("machine: {} package(s), {} NUMA node(s), {} LLC domain(s), {} core(s), {} thread(s)\n",
        topology.packages().size(), topology.numa_nodes().size(), topology.llc_domains().size(), topology.cores().size(),
        topology.cpus().size());
    text += fmt::format("offline CPUs: {}; isolated CPUs: {}\n", or_none(topology.offline()), or_none(topology.isolated()));
    for (u32 p = 0; p < topology.packages().size(); ++p) {
        auto const& package = topology.packages()[p];
        std::string id = package.os_id >= 0 ? fmt::format(" (physical id {})", package.os_id) : "";
        text += fmt::format("package {}{}: CPUs {}\n", p, id, package.cpus.to_list());
        for (auto const& llc : topology.llc_domains()) {
            if (llc.package != p)
                continue;
            text += fmt::format("  {} {}: NUMA node {}, {} core(s)\n", cache_name(llc), llc.cpus.to_list(),
                topology.numa_nodes()[llc.node].os_id, llc.cores.size());
            std::string line = "    cores:";
            for (u32 c : llc.cores) {
                auto const& threads = topology.cores()[c].threads;
                std::string core = threads.size() == 1 ? fmt::format(" {}", threads[0]) : fmt::format(" [{}]", fmt::join(threads, ","));
                if (line.size() + core.size() > 100) {
                    text += line + "\n";
                    line = "         ";
                }
                line += core;
            }
            text += line + "\n";
        }
    }
    text += "NUMA nodes:\n";
    for (u32 n = 0; n < topology.numa_nodes().size(); ++n) {
        auto const& node = topology.numa_nodes()[n];
        std::vector<u32> row;
        for (u32 m = 0; m < topology.numa_nodes().size(); ++m)
            row.push_back(topology.distance(n, m));
        text += fmt::format("  node {}: CPUs {}; distances {}\n", node.os_id, or_none(node.cpus), fmt::join(row, " "));
    }
    return text;
}

} // namespace kasou::sched
