#pragma once

#include "base/guest_topology.h"
#include "base/types.h"

namespace kasou::arch::x86_64 {

// x2APIC IDs of a GuestTopology: the thread and core fields get power-of-two widths, as CPUID
// leaf 0xB describes, and the package number sits above them.

// Bit widths of the thread and core fields of an x2APIC ID.
u32 thread_bits(GuestTopology const& topology);
u32 core_bits(GuestTopology const& topology);
u32 apic_id(GuestTopology const& topology, u32 vcpu_index);

} // namespace kasou::arch::x86_64
