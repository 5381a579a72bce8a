#pragma once

#include "arch/x86_64/cpu_state.h"

#include "arch/x86_64/boot_entry.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// Size of the identity map write_identity_page_tables() builds: PML4, PDPT and four page directories.
constexpr u64 IDENTITY_MAP_TABLES_SIZE = 6 * 0x1000;

// Writes 4-level page tables at boot_layout::PAGE_TABLES that map the first 4 GiB of guest-physical
// memory onto themselves in 2 MiB pages, writable, supervisor only (a PML4 with one entry, one PDPT
// with four, four full page directories). 2 MiB pages work on every x86-64 CPU; 1 GiB pages would
// need CPUID.80000001H:EDX[26].
ErrorOr<void> write_identity_page_tables(memory::GuestMemory const& memory);

// Puts the bootstrap vCPU's registers in the state `entry` asks for, starting from the vCPU's reset
// state as the engine reports it: real mode with CS = DS = ES = SS = segment; 32-bit protected mode with
// flat 4 GiB segments from a GDT kasou writes at boot_layout::GDT (the PVH ABI: paging off, CR4 = 0,
// interrupts off, EBX = start info); or 64-bit long mode with kasou's identity page tables, CS =
// 0x10 (64-bit code) and DS = ES = SS = 0x18 (the Linux 64-bit boot protocol: RSI = boot_params).
ErrorOr<void> prepare_boot_cpu(memory::GuestMemory const& memory, BootEntry const& entry, GeneralRegisters& regs, SystemRegisters& sregs);

} // namespace kasou::arch::x86_64
