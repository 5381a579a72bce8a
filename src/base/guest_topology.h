#pragma once

#include "base/types.h"

namespace kasou {

// How a VM's vCPUs are arranged as the guest sees them: vCPU i is thread (i % threads_per_core) of
// core (i / threads_per_core) % cores_per_package of package i / (threads_per_core *
// cores_per_package). The core-group allocator (sched) chooses one to match the host CPUs it hands
// out; the architecture code (arch/x86_64/cpu_topology.h) tells it to the guest through CPUID and
// APIC IDs. Every field is at least 1.
struct GuestTopology {
    u32 threads_per_core { 1 };
    u32 cores_per_package { 1 };
    u32 packages { 1 };

    // One package of `count` single-threaded cores.
    static constexpr GuestTopology single_package(u32 count) { return { 1, count, 1 }; }

    constexpr u32 vcpu_count() const { return threads_per_core * cores_per_package * packages; }
    constexpr u32 logical_per_package() const { return threads_per_core * cores_per_package; }
    bool operator==(GuestTopology const&) const = default;
};

} // namespace kasou
