#pragma once

#include <string>
#include <vector>

#include "sched/topology.h"

namespace kasou::sched::testing {

// The captured sysfs archives in KASOU_TOPOLOGY_DIR, by name without ".tar.bz2", sorted.
std::vector<std::string> shipped_names();
std::string shipped_path(std::string const& name);
// The topology of one archive, unpacked and read once per test run.
Topology const& shipped(std::string const& name);

} // namespace kasou::sched::testing
