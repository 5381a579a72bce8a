#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sched/topology.h"

namespace kasou::sched {

// Renders a topology for `kasou cores topology`. The JSON object always has the integer fields
// packages, numa_nodes, llc_domains, cores and threads (scripts rely on them), then the objects.
nlohmann::ordered_json topology_to_json(Topology const& topology);
// A tree for people: packages, their last-level caches (with the NUMA node), the cores' threads,
// then the NUMA distance matrix.
std::string topology_to_text(Topology const& topology);

} // namespace kasou::sched
