#include "arch/x86_64/boot_cpu_state.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "arch/x86_64/boot_layout.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

namespace {

// GDT selectors (Intel SDM vol. 3A, 3.4.5: segment descriptors). 0x10 and 0x18 are the __BOOT_CS and
// __BOOT_DS the Linux 64-bit boot protocol asks for (boot.rst, "64-bit BOOT PROTOCOL").
constexpr u16 CODE32_SELECTOR = 0x08;
constexpr u16 CODE64_SELECTOR = 0x10;
constexpr u16 DATA_SELECTOR = 0x18;
constexpr u16 TSS_SELECTOR = 0x20;
constexpr u64 CR0_PE = 1u << 0;
constexpr u64 CR0_ET = 1u << 4;
constexpr u64 CR0_PG = 1u << 31;
constexpr u64 CR4_PAE = 1u << 5;
constexpr u64 EFER_LME = 1u << 8;
constexpr u64 EFER_LMA = 1u << 10;
constexpr u64 RFLAGS_RESERVED = 1u << 1;
// Paging-structure entry bits (Intel SDM vol. 3A, 4.5: 4-level paging).
constexpr u64 PAGE_PRESENT = 1u << 0;
constexpr u64 PAGE_WRITABLE = 1u << 1;
constexpr u64 PAGE_LARGE = 1u << 7;

// Descriptor fields: access byte (P, DPL, S, type) and flags nibble (G, D/B, L, AVL).
constexpr u64 descriptor(u64 base, u64 limit, u8 access, u8 flags)
{
    return (limit & 0xFFFF) | ((base & 0xFF'FFFF) << 16) | (u64 { access } << 40) | (((limit >> 16) & 0xF) << 48)
        | (u64 { flags } << 52) | (((base >> 24) & 0xFF) << 56);
}

constexpr std::array<u64, 5> BOOT_GDT = {
    0,
    descriptor(0, 0xF'FFFF, 0x9B, 0xC), // 32-bit code, execute/read, 4 GiB
    descriptor(0, 0xF'FFFF, 0x9B, 0xA), // 64-bit code (L = 1, D = 0), execute/read
    descriptor(0, 0xF'FFFF, 0x93, 0xC), // data, read/write, 4 GiB
    descriptor(0, 0x67, 0x8B, 0x0),     // busy TSS
};
static_assert(sizeof(BOOT_GDT) <= boot_layout::START_INFO - boot_layout::GDT);
static_assert(boot_layout::PAGE_TABLES + IDENTITY_MAP_TABLES_SIZE <= boot_layout::PAGE_TABLES_END);

void real_mode_segment(Segment& segment, u16 value, u8 type)
{
    segment.selector = value;
    segment.base = u64 { value } << 4;
    segment.limit = 0xFFFF;
    segment.type = type;
    segment.present = 1;
    segment.s = 1;
    segment.dpl = 0;
    segment.db = 0;
    segment.g = 0;
    segment.l = 0;
}

} // namespace

ErrorOr<void> write_identity_page_tables(memory::GuestMemory const& memory)
{
    auto tables = TRY(memory.span(boot_layout::PAGE_TABLES, IDENTITY_MAP_TABLES_SIZE));
    std::fill(tables.begin(), tables.end(), u8 { 0 });
    auto put = [&](u64 table_offset, u64 index, u64 value) { std::memcpy(tables.data() + table_offset + index * 8, &value, 8); };
    constexpr u64 PML4 = 0;
    constexpr u64 PDPT = 0x1000;
    constexpr u64 FIRST_DIRECTORY = 0x2000;
    put(PML4, 0, (boot_layout::PAGE_TABLES + PDPT) | PAGE_PRESENT | PAGE_WRITABLE);
    for (u64 directory = 0; directory < 4; ++directory) {
        u64 directory_offset = FIRST_DIRECTORY + directory * 0x1000;
        put(PDPT, directory, (boot_layout::PAGE_TABLES + directory_offset) | PAGE_PRESENT | PAGE_WRITABLE);
        for (u64 entry = 0; entry < 512; ++entry)
            put(directory_offset, entry, ((directory * 512 + entry) * 2 * MiB) | PAGE_PRESENT | PAGE_WRITABLE | PAGE_LARGE);
    }
    return {};
}

ErrorOr<void> prepare_boot_cpu(memory::GuestMemory const& memory, BootEntry const& entry, GeneralRegisters& regs, SystemRegisters& sregs)
{
    regs = {};
    regs.rflags = RFLAGS_RESERVED;
    regs.rip = entry.instruction_pointer;
    regs.rsp = entry.stack_pointer;
    regs.rbx = entry.rbx;
    regs.rsi = entry.rsi;

    switch (entry.mode) {
    case EntryMode::Real:
        real_mode_segment(sregs.cs, entry.real_mode_segment, 0xB);
        for (auto* data : { &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss })
            real_mode_segment(*data, entry.real_mode_segment, 0x3);
        return {};
    case EntryMode::Protected32:
    case EntryMode::Long64:
        break;
    }

    TRY(memory.write(boot_layout::GDT, std::span(reinterpret_cast<u8 const*>(BOOT_GDT.data()), sizeof(BOOT_GDT))));
    sregs.gdt.base = boot_layout::GDT;
    sregs.gdt.limit = sizeof(BOOT_GDT) - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    for (auto* data : { &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss })
        *data = segment_from_descriptor(BOOT_GDT[DATA_SELECTOR / 8], DATA_SELECTOR);
    sregs.tr = segment_from_descriptor(BOOT_GDT[TSS_SELECTOR / 8], TSS_SELECTOR);
    if (entry.mode == EntryMode::Protected32) {
        sregs.cs = segment_from_descriptor(BOOT_GDT[CODE32_SELECTOR / 8], CODE32_SELECTOR);
        sregs.cr0 = CR0_PE | CR0_ET;
        sregs.cr3 = 0;
        sregs.cr4 = 0;
        sregs.efer = 0;
        return {};
    }
    TRY(write_identity_page_tables(memory));
    sregs.cs = segment_from_descriptor(BOOT_GDT[CODE64_SELECTOR / 8], CODE64_SELECTOR);
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.cr3 = boot_layout::PAGE_TABLES;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    return {};
}

} // namespace kasou::arch::x86_64
