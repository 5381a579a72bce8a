#pragma once

#include <string>

#include "base/error.h"
#include "sched/topology.h"

namespace kasou::sched {

// Reads a topology from a sysfs tree, live or captured, following the kernel's ABI
// (Documentation/ABI/testing/sysfs-devices-system-cpu, cputopology, cacheinfo and the node ABI):
// cpu/online, cpu/isolated, cpuN/online, cpuN/topology/*, cpuN/cache/index*/{level,type,shared_cpu_*},
// node/online, nodeN/{cpulist,cpumap,distance}. Each value has fallbacks, in order, because
// kernels and architectures differ in what they export:
// - online CPUs: cpu/online (when it names any cpuN present), else every cpuN whose cpuN/online
//   is not "0";
// - package: physical_package_id when it is not -1, else package_cpus_list, core_siblings_list
//   and their mask forms;
// - SMT siblings: core_cpus_list, thread_siblings_list and their mask forms, keeping only siblings
//   with the same core_id (AMD compute units report two cores as siblings); without them, CPUs of
//   one package sharing a core_id;
// - last-level cache: for each CPU, its highest-level data or unified cache, shared_cpu_list else
//   shared_cpu_map (an empty map means the core's threads, as on some ia64 kernels); without any
//   cache information, the package;
// - NUMA: nodeN/cpulist else cpumap; distance rows list node/online in ascending order; no node
//   directory means one node.
// `sys_dir` is the directory holding devices/system/cpu ("/sys" on a live host).
ErrorOr<Topology> read_topology(std::string const& sys_dir);

// Finds the sysfs root for a user-given path: a directory that holds devices/system/cpu (the sys
// directory itself), or one that holds sys/devices/system/cpu, or a directory whose only
// subdirectory is one of those (how captured archives unpack).
ErrorOr<std::string> locate_sys_dir(std::string const& path);

} // namespace kasou::sched
