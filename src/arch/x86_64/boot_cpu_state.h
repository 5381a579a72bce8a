#pragma once

#include <linux/kvm.h>

#include "arch/x86_64/boot_entry.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// Puts the bootstrap vCPU's registers in the state `entry` asks for, starting from the vCPU's reset
// state as KVM reports it: real mode with CS = DS = ES = SS = segment, or 32-bit protected mode with
// flat 4 GiB segments from a GDT kasou writes at boot_layout::GDT (the PVH ABI: paging off, CR4 = 0,
// interrupts off, EBX = start info).
ErrorOr<void> prepare_boot_cpu(memory::GuestMemory const& memory, BootEntry const& entry, kvm_regs& regs, kvm_sregs& sregs);

} // namespace kasou::arch::x86_64
