#include "sched/memory_binding.h"

#include <linux/mempolicy.h>

#include <algorithm>

#include "base/sys_memory.h"

namespace kasou::sched {

ErrorOr<void> bind_memory_to_nodes(void* address, u64 length, std::vector<u32> const& nodes)
{
    if (nodes.empty())
        return make_error("binding memory needs at least one NUMA node");
    constexpr u32 BITS = 8 * sizeof(unsigned long);
    u32 highest = 0;
    for (u32 node : nodes)
        highest = std::max(highest, node);
    std::vector<unsigned long> mask(highest / BITS + 1, 0);
    for (u32 node : nodes)
        mask[node / BITS] |= 1ul << (node % BITS);
    // The kernel reads max_node - 1 bits; pass one more than the highest node.
    return sys::mbind(address, length, MPOL_BIND, mask.data(), highest + 2, MPOL_MF_MOVE);
}

} // namespace kasou::sched
