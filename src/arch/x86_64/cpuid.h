#pragma once

#include <vector>

#include "arch/x86_64/cpu_state.h"

#include "arch/x86_64/cpu_features.h"
#include "arch/x86_64/cpu_topology.h"
#include "base/types.h"

namespace kasou::arch::x86_64 {

// Builds the CPUID table of one vCPU from what the execution engine supports: the APIC ID and topology leaves (0x1,
// 0x4, 0xB, 0x1F and AMD's 0x80000008) describe `topology` consistently, x2APIC and the hypervisor
// bit are offered, the KVM hypervisor leaf is present, the features in `hidden` are cleared, and
// leaf 0xD describes only the XSAVE components whose features remain (shape_xsave_leaf).
// A pure function of its inputs, so it is tested without /dev/kvm.
CpuidTable shape_cpuid(CpuidTable supported, u32 vcpu_index,
    CpuTopology const& topology, std::vector<CpuFeature> const& hidden);

// The entry for (function, index), or nullptr.
CpuidEntry const* find_cpuid(CpuidTable const& table, u32 function, u32 index = 0);

} // namespace kasou::arch::x86_64
