#include "arch/x86_64/cpu_topology.h"

namespace kasou::arch::x86_64 {

u32 CpuTopology::bits_for(u32 count)
{
    u32 bits = 0;
    while ((u32 { 1 } << bits) < count)
        ++bits;
    return bits;
}

u32 CpuTopology::apic_id(u32 vcpu_index) const
{
    u32 thread = vcpu_index % threads_per_core;
    u32 core = (vcpu_index / threads_per_core) % cores_per_package;
    u32 package = vcpu_index / logical_per_package();
    return (package << (thread_bits() + core_bits())) | (core << thread_bits()) | thread;
}

} // namespace kasou::arch::x86_64
