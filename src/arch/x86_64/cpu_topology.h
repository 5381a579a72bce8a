#pragma once

#include "base/types.h"

namespace kasou::arch::x86_64 {

// How a VM's vCPUs are arranged as the guest sees them: vCPU i is thread (i % threads_per_core) of
// core (i / threads_per_core) % cores_per_package of package i / (threads_per_core * cores_per_package).
// x2APIC IDs are built from those fields with power-of-two widths, as CPUID leaf 0xB describes.
struct CpuTopology {
    u32 threads_per_core { 1 };
    u32 cores_per_package { 1 };
    u32 packages { 1 };

    // One package of `count` single-threaded cores.
    static CpuTopology single_package(u32 count) { return { 1, count, 1 }; }

    u32 vcpu_count() const { return threads_per_core * cores_per_package * packages; }
    u32 logical_per_package() const { return threads_per_core * cores_per_package; }
    // Bit widths of the thread and core fields of an x2APIC ID.
    u32 thread_bits() const { return bits_for(threads_per_core); }
    u32 core_bits() const { return bits_for(cores_per_package); }
    u32 apic_id(u32 vcpu_index) const;

private:
    static u32 bits_for(u32 count);
};

} // namespace kasou::arch::x86_64
