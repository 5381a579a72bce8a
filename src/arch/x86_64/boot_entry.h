#pragma once

#include "base/types.h"

namespace kasou::arch::x86_64 {

// The CPU mode a boot protocol enters the guest in.
enum class EntryMode {
    Real,        // 16-bit real mode at segment:offset (flat binaries)
    Protected32, // 32-bit protected mode, paging off, flat segments (PVH)
    Long64,      // 64-bit long mode, identity-mapped first 4 GiB, flat segments (Linux 64-bit boot)
};

// Where and how the bootstrap vCPU starts: everything a loader decides about the first
// instruction. Application processors start as the guest wakes them (INIT/SIPI).
struct BootEntry {
    EntryMode mode { EntryMode::Real };
    u64 instruction_pointer { 0 };
    u64 stack_pointer { 0 };
    u16 real_mode_segment { 0 }; // CS = DS = ES = SS in real mode
    u64 rbx { 0 };               // PVH: guest-physical address of hvm_start_info
    u64 rsi { 0 };               // Linux 64-bit boot: guest-physical address of boot_params
};

} // namespace kasou::arch::x86_64
