#pragma once

#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::sched {

// Binds [address, address + length) (guest RAM, page aligned) to the NUMA nodes `nodes` (os ids)
// with MPOL_BIND, moving pages already there. A VMM calls it with VmPlacement::nodes when the host
// has more than one node, so a group's memory follows its CPUs.
ErrorOr<void> bind_memory_to_nodes(void* address, u64 length, std::vector<u32> const& nodes);

} // namespace kasou::sched
