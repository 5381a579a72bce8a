#include <gtest/gtest.h>

#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/boot_layout.h"

using namespace kasou;
using namespace kasou::arch::x86_64;
using kasou::memory::GuestMemory;

namespace {

u64 entry_at(GuestMemory const& memory, u64 table, u64 index) { return memory.read_object<u64>(table + index * 8).value(); }

} // namespace

TEST(IdentityPageTables, MapTheFirstFourGiBIn2MiBPages)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    ASSERT_TRUE(memory.write_object<u64>(boot_layout::PAGE_TABLES + 8, 0xDEAD)); // stale data is cleared
    ASSERT_TRUE(write_identity_page_tables(memory));
    u64 pml4 = boot_layout::PAGE_TABLES;
    u64 pdpt = entry_at(memory, pml4, 0) & ~0xFFFull;
    EXPECT_EQ(entry_at(memory, pml4, 0) & 0xFFF, 0x3u) << "present, writable";
    EXPECT_EQ(entry_at(memory, pml4, 1), 0u);
    EXPECT_EQ(pdpt, boot_layout::PAGE_TABLES + 0x1000);
    for (u64 gib = 0; gib < 4; ++gib) {
        u64 directory_entry = entry_at(memory, pdpt, gib);
        EXPECT_EQ(directory_entry & 0xFFF, 0x3u);
        u64 directory = directory_entry & ~0xFFFull;
        EXPECT_LT(directory, boot_layout::PAGE_TABLES_END);
        for (u64 index : { u64 { 0 }, u64 { 1 }, u64 { 511 } }) {
            u64 page = entry_at(memory, directory, index);
            EXPECT_EQ(page & 0xFFF, 0x83u) << "present, writable, 2 MiB page";
            EXPECT_EQ(page & ~0xFFFull, gib * GiB + index * 2 * MiB);
        }
    }
    EXPECT_EQ(entry_at(memory, pdpt, 4), 0u);
}

TEST(BootCpuState, LinuxEntryIsLongModeWithBootSelectors)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    BootEntry entry;
    entry.mode = EntryMode::Long64;
    entry.instruction_pointer = 0x100200;
    entry.rsi = boot_layout::START_INFO;
    GeneralRegisters regs {};
    SystemRegisters sregs {};
    ASSERT_TRUE(prepare_boot_cpu(memory, entry, regs, sregs));
    EXPECT_EQ(regs.rip, 0x100200u);
    EXPECT_EQ(regs.rsi, boot_layout::START_INFO);
    EXPECT_EQ(regs.rflags & (1u << 9), 0u) << "interrupts off";
    EXPECT_EQ(sregs.cr0 & 0x8000'0001u, 0x8000'0001u) << "PE and PG";
    EXPECT_EQ(sregs.cr4 & (1u << 5), 1u << 5) << "PAE";
    EXPECT_EQ(sregs.efer & 0x500u, 0x500u) << "LME and LMA";
    EXPECT_EQ(sregs.cr3, boot_layout::PAGE_TABLES);
    // boot.rst: CS = __BOOT_CS (0x10), DS = ES = SS = __BOOT_DS (0x18), flat.
    EXPECT_EQ(sregs.cs.selector, 0x10);
    EXPECT_EQ(sregs.cs.l, 1);
    EXPECT_EQ(sregs.cs.db, 0);
    EXPECT_EQ(sregs.cs.type, 0xB);
    for (auto const* data : { &sregs.ds, &sregs.es, &sregs.ss }) {
        EXPECT_EQ(data->selector, 0x18);
        EXPECT_EQ(data->base, 0u);
        EXPECT_EQ(data->limit, 0xFFFF'FFFFu);
        EXPECT_EQ(data->type, 0x3);
    }
    // The descriptors behind the selectors are in the GDT in guest memory.
    EXPECT_EQ(memory.read_object<u64>(sregs.gdt.base + 0x10).value(), 0x00AF9B000000FFFFu);
    EXPECT_EQ(memory.read_object<u64>(sregs.gdt.base + 0x18).value(), 0x00CF93000000FFFFu);
    // The page tables were written.
    EXPECT_EQ(memory.read_object<u64>(boot_layout::PAGE_TABLES).value() & 0xFFF, 0x3u);
}
