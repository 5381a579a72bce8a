#pragma once

#include "base/types.h"

// Where kasou places its boot data in low guest memory. The addresses sit in conventional memory
// below 640 KiB, away from the real-mode IVT and BDA (below 0x500) and from where kernels load
// (1 MiB and above); a kernel segment that overlaps them is refused.
namespace kasou::arch::x86_64::boot_layout {

constexpr u64 GDT = 0x500;              // up to 8 descriptors (boot_cpu_state.cpp)
constexpr u64 START_INFO = 0x6000;      // hvm_start_info (PVH) or the 4 KiB boot_params (Linux)
constexpr u64 MODULE_LIST = 0x6040;     // hvm_modlist_entry array
constexpr u64 MEMORY_MAP = 0x7000;      // hvm_memmap_table_entry array
constexpr u64 MEMORY_MAP_MAX_ENTRIES = 128;
constexpr u64 PAGE_TABLES = 0x9000;     // PML4 at 0x9000, PDPT at 0xA000, 4 page directories after
constexpr u64 PAGE_TABLES_END = 0x10000;
constexpr u64 BOOT_STACK_TOP = 0x8FF0;
constexpr u64 COMMAND_LINE = 0x20000;
constexpr u64 COMMAND_LINE_MAX = 0x10000; // including the terminating NUL
constexpr u64 RESERVED_START = 0x500;
constexpr u64 RESERVED_END = COMMAND_LINE + COMMAND_LINE_MAX;
// Conventional memory ends where the EBDA starts; 0x9FC00..1 MiB is reserved (EBDA, VGA, BIOS).
constexpr u64 EBDA_START = 0x9FC00;
constexpr u64 HIGH_MEMORY_START = 0x100000;
// kasou's ACPI tables (RSDP, XSDT, FADT, MADT, DSDT) in the reserved BIOS area where the ACPI specification lets an
// operating system look for the RSDP (ACPI 6.5, 5.2.5.1: 0xE0000-0xFFFFF).
constexpr u64 ACPI_TABLES = 0xE0000;
constexpr u64 ACPI_TABLES_END = 0x100000;
// Where a Linux bzImage's protected-mode kernel is loaded (the address boot.rst calls 0x100000).
constexpr u64 BZIMAGE_LOAD_ADDRESS = HIGH_MEMORY_START;

// The real-mode flat-binary convention: loaded at 0x10000, entered at 1000:0000.
constexpr u64 FLAT_LOAD_ADDRESS = 0x10000;
constexpr u16 FLAT_SEGMENT = 0x1000;
constexpr u64 FLAT_MAX_SIZE = EBDA_START - FLAT_LOAD_ADDRESS;

} // namespace kasou::arch::x86_64::boot_layout
