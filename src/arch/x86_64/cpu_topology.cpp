#include "arch/x86_64/cpu_topology.h"

namespace kasou::arch::x86_64 {

namespace {

u32 bits_for(u32 count)
{
    u32 bits = 0;
    while ((u32 { 1 } << bits) < count)
        ++bits;
    return bits;
}

} // namespace

u32 thread_bits(GuestTopology const& topology) { return bits_for(topology.threads_per_core); }

u32 core_bits(GuestTopology const& topology) { return bits_for(topology.cores_per_package); }

u32 apic_id(GuestTopology const& topology, u32 vcpu_index)
{
    u32 thread = vcpu_index % topology.threads_per_core;
    u32 core = (vcpu_index / topology.threads_per_core) % topology.cores_per_package;
    u32 package = vcpu_index / topology.logical_per_package();
    return (package << (thread_bits(topology) + core_bits(topology))) | (core << thread_bits(topology)) | thread;
}

} // namespace kasou::arch::x86_64
