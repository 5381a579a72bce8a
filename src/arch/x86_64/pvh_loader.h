#pragma once

#include <span>

#include "arch/x86_64/boot_entry.h"
#include "arch/x86_64/elf_image.h"
#include "arch/x86_64/kernel_options.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// Xen's PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h), version 1.
constexpr u32 XEN_ELFNOTE_PHYS32_ENTRY = 18;
constexpr u32 HVM_START_MAGIC = 0x336e'c578;

struct HvmStartInfo {
    u32 magic;
    u32 version;
    u32 flags;
    u32 nr_modules;
    u64 modlist_paddr;
    u64 cmdline_paddr;
    u64 rsdp_paddr;
    u64 memmap_paddr;
    u32 memmap_entries;
    u32 reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmMemmapEntry {
    u64 addr;
    u64 size;
    u32 type;
    u32 reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

struct HvmModlistEntry {
    u64 paddr;
    u64 size;
    u64 cmdline_paddr;
    u64 reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

// The 32-bit entry point named by the image's XEN_ELFNOTE_PHYS32_ENTRY note, or an error saying
// why there is none.
ErrorOr<u32> pvh_entry_point(ElfImage const& elf);

// Loads an ELF image with a PVH note and writes hvm_start_info for it: command line, memory map, the
// RSDP address, and the initrd as the first module (how Linux's PVH entry finds its initrd).
// Segments must lie wholly in guest RAM and clear of kasou's boot data.
ErrorOr<BootEntry> load_pvh(memory::GuestMemory const& memory, std::span<u8 const> image, ElfImage const& elf,
    KernelOptions const& options);

} // namespace kasou::arch::x86_64
