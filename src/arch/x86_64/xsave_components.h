#pragma once

#include <vector>

#include "arch/x86_64/cpu_state.h"

#include "base/types.h"

namespace kasou::arch::x86_64 {

// Makes CPUID leaf 0xD describe exactly the XSAVE state components whose features the rest of the
// table offers (Intel SDM vol. 1, 13.2): a component whose feature is hidden or absent (AVX,
// AVX-512, MPX, PKU, AMX) leaves the user mask in 0xD.0 EAX:EDX and its sub-leaf reads as zeros,
// and the size fields (EBX for that mask, ECX for all offered components) are recomputed from the
// sub-leaves that remain. Supervisor components (0xD.1 ECX:EDX) are left as they are. Without XSAVE
// in leaf 1 the table is not changed.
void shape_xsave_leaf(CpuidTable& table);

// The XCR0 a guest that enables every offered user component would write, or 0 when the table
// offers no XSAVE. A vCPU starts with this XCR0 so that the XSAVE area size KVM reports in
// 0xD.0 EBX agrees with what a guest kernel computes even before it writes XCR0 itself.
u64 offered_xcr0(CpuidTable const& table);

} // namespace kasou::arch::x86_64
