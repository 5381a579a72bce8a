#include <cstring>

#include <gtest/gtest.h>

#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/kernel_loader.h"
#include "arch/x86_64/pvh_loader.h"
#include "elf_builder.h"

using namespace kasou;
using namespace kasou::arch::x86_64;
using kasou::memory::GuestMemory;

namespace {

std::string load_error(GuestMemory const& memory, std::vector<u8> const& image, KernelOptions options = {})
{
    auto result = load_kernel(memory, image, options);
    EXPECT_FALSE(result.has_value());
    return result ? std::string() : result.error().to_string();
}

} // namespace

TEST(PvhLoader, LoadsSegmentsAndWritesStartInfo)
{
    auto memory = GuestMemory::create(64 * MiB).value();
    std::vector<u8> code = { 0xb0, 0x01, 0xf4 };
    auto image = test::build_elf64(0x100000, { { 0x100000, code, 0x3000 } }, { { "Xen", 18, test::pvh_entry_description(0x100001) } });
    // Dirty the bss first: the loader must zero it.
    ASSERT_TRUE(memory.write_object<u32>(0x102000, 0xffffffff));
    auto loaded = load_kernel(memory, image, { false, "console=ttyS0 hello" }).value();
    EXPECT_EQ(loaded.format, KernelFormat::Pvh);
    EXPECT_FALSE(loaded.is_linux);
    EXPECT_EQ(loaded.entry.mode, EntryMode::Protected32);
    EXPECT_EQ(loaded.entry.instruction_pointer, 0x100001u);
    EXPECT_EQ(loaded.entry.rbx, boot_layout::START_INFO);
    EXPECT_EQ(memory.read_object<u8>(0x100002).value(), 0xf4);
    EXPECT_EQ(memory.read_object<u32>(0x102000).value(), 0u);

    auto info = memory.read_object<HvmStartInfo>(boot_layout::START_INFO).value();
    EXPECT_EQ(info.magic, HVM_START_MAGIC);
    EXPECT_EQ(info.version, 1u);
    char line[32] = {};
    ASSERT_TRUE(memory.read(info.cmdline_paddr, std::span(reinterpret_cast<u8*>(line), 20)));
    EXPECT_STREQ(line, "console=ttyS0 hello");
    ASSERT_EQ(info.memmap_entries, 3u);
    auto last = memory.read_object<HvmMemmapEntry>(info.memmap_paddr + 2 * sizeof(HvmMemmapEntry)).value();
    EXPECT_EQ(last.addr, 0x100000u);
    EXPECT_EQ(last.addr + last.size, 64 * MiB);
    EXPECT_EQ(last.type, 1u);
}

TEST(PvhLoader, MarksLinuxImages)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    auto image = test::build_elf64(0x100000, { { 0x100000, { 0xf4 }, 1 } },
        { { "Linux", 6, { 'x' } }, { "Xen", 18, test::pvh_entry_description(0x100000) } });
    EXPECT_TRUE(load_kernel(memory, image, {}).value().is_linux);
}

TEST(PvhLoader, RefusesBadImagesBeforeWritingMemory)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    EXPECT_NE(load_error(memory, test::build_elf64(0x100000, { { 0x100000, { 0xf4 }, 1 } }, {})).find("no PVH entry note"),
        std::string::npos);
    EXPECT_NE(load_error(memory, test::build_pvh_guest({ 0xf4 }, 0x2000000)).find("does not fit in guest RAM"), std::string::npos);
    EXPECT_NE(load_error(memory, test::build_pvh_guest({ 0xf4 }, 0x6000)).find("overlaps kasou's boot data"), std::string::npos);
    auto outside_entry = test::build_elf64(0x100000, { { 0x100000, { 0xf4 }, 1 } }, { { "Xen", 18, test::pvh_entry_description(0x300000) } });
    EXPECT_NE(load_error(memory, outside_entry).find("not inside any loadable segment"), std::string::npos);
    auto odd_note = test::build_elf64(0x100000, { { 0x100000, { 0xf4 }, 1 } }, { { "Xen", 18, { 1, 2 } } });
    EXPECT_NE(load_error(memory, odd_note).find("2-byte value"), std::string::npos);
    EXPECT_NE(load_error(memory, test::build_pvh_guest(), { false, std::string(0x10000, 'a') }).find("command line"), std::string::npos);
    // A refused image leaves guest memory untouched.
    EXPECT_EQ(memory.read_object<u32>(boot_layout::START_INFO).value(), 0u);
}

TEST(KernelLoader, NamesUnknownFormats)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    EXPECT_NE(load_error(memory, {}).find("empty"), std::string::npos);
    EXPECT_NE(load_error(memory, { 'h', 'e', 'l', 'l', 'o' }).find("not an ELF"), std::string::npos);
    std::vector<u8> bzimage(0x1000);
    std::memcpy(bzimage.data() + 0x202, "HdrS", 4);
    EXPECT_NE(load_error(memory, bzimage).find("bzImage"), std::string::npos);
}

TEST(FlatLoader, LoadsAtTheConventionalAddress)
{
    auto memory = GuestMemory::create(1 * MiB).value();
    auto loaded = load_kernel(memory, std::vector<u8> { 0xfa, 0xf4 }, { true, "" }).value();
    EXPECT_EQ(loaded.format, KernelFormat::Flat);
    EXPECT_EQ(loaded.entry.mode, EntryMode::Real);
    EXPECT_EQ(loaded.entry.real_mode_segment, 0x1000);
    EXPECT_EQ(memory.read_object<u8>(0x10001).value(), 0xf4);
    EXPECT_NE(load_error(memory, std::vector<u8>(0x90000, 0x90), { true, "" }).find("at most"), std::string::npos);
    EXPECT_NE(load_error(memory, {}, { true, "" }).find("empty"), std::string::npos);
}

TEST(BootCpuState, PvhEntryIsFlatProtectedModeWithPagingOff)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    BootEntry entry;
    entry.mode = EntryMode::Protected32;
    entry.instruction_pointer = 0x100000;
    entry.rbx = boot_layout::START_INFO;
    GeneralRegisters regs {};
    SystemRegisters sregs {};
    ASSERT_TRUE(prepare_boot_cpu(memory, entry, regs, sregs));
    EXPECT_EQ(regs.rip, 0x100000u);
    EXPECT_EQ(regs.rbx, boot_layout::START_INFO);
    EXPECT_EQ(regs.rflags & (1u << 9), 0u) << "interrupts off";
    EXPECT_EQ(sregs.cr0 & 1, 1u);
    EXPECT_EQ(sregs.cr0 & (1u << 31), 0u);
    EXPECT_EQ(sregs.cr4, 0u);
    EXPECT_EQ(sregs.cs.base, 0u);
    EXPECT_EQ(sregs.cs.limit, 0xFFFFFFFFu);
    EXPECT_EQ(sregs.cs.db, 1);
    EXPECT_EQ(sregs.cs.type, 0xB);
    EXPECT_EQ(sregs.ds.type, 0x3);
    EXPECT_EQ(sregs.ds.limit, 0xFFFFFFFFu);
    EXPECT_EQ(sregs.tr.type, 0xB);
    // The GDT in guest memory holds the descriptor CS was loaded from.
    EXPECT_EQ(memory.read_object<u64>(sregs.gdt.base + sregs.cs.selector).value(), 0x00CF9B000000FFFFu);
}
