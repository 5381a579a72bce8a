#include <cstring>

#include <gtest/gtest.h>

#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/bzimage.h"
#include "arch/x86_64/initrd.h"
#include "arch/x86_64/kernel_loader.h"
#include "arch/x86_64/memory_map.h"
#include "arch/x86_64/pvh_loader.h"
#include "bzimage_builder.h"
#include "elf_builder.h"

using namespace kasou;
using namespace kasou::arch::x86_64;
using kasou::memory::GuestMemory;
using kasou::test::build_bzimage;
using kasou::test::BzImageSpec;

namespace {

template<class T>
T boot_param(GuestMemory const& memory, u64 offset)
{
    return memory.read_object<T>(boot_layout::START_INFO + offset).value();
}

// The error for an image, asserting that the load failed and wrote nothing to guest memory.
std::string refusal(std::vector<u8> const& image, KernelOptions const& options = {}, u64 memory_size = 128 * MiB)
{
    auto memory = GuestMemory::create(memory_size).value();
    auto result = load_kernel(memory, image, options);
    EXPECT_FALSE(result.has_value());
    EXPECT_EQ(memory.read_object<u64>(boot_layout::START_INFO).value(), 0u);
    EXPECT_EQ(memory.read_object<u64>(boot_layout::BZIMAGE_LOAD_ADDRESS).value(), 0u);
    EXPECT_EQ(memory.read_object<u64>(memory.regions().front().end() - 4096).value(), 0u);
    return result ? std::string() : result.error().to_string();
}

bool mentions(std::string const& text, std::string const& part)
{
    if (text.find(part) != std::string::npos)
        return true;
    ADD_FAILURE() << "'" << part << "' not in: " << text;
    return false;
}

} // namespace

TEST(BzImage, LoadsKernelAndFillsBootParams)
{
    auto memory = GuestMemory::create(128 * MiB).value();
    auto image = build_bzimage();
    std::vector<u8> initrd(3 * 4096 + 100, 0x5A);
    KernelOptions options { false, "console=ttyS0 root=/dev/ram0", initrd, 0xE0040 };
    auto loaded = load_kernel(memory, image, options).value();
    EXPECT_EQ(loaded.format, KernelFormat::BzImage);
    EXPECT_TRUE(loaded.is_linux);
    EXPECT_EQ(loaded.entry.mode, EntryMode::Long64);
    EXPECT_EQ(loaded.entry.instruction_pointer, 0x100200u);
    EXPECT_EQ(loaded.entry.rsi, boot_layout::START_INFO);

    // The protected-mode kernel (everything after the 2-sector setup) sits at 1 MiB.
    EXPECT_EQ(memory.read_object<u8>(0x100200).value(), 0xF4);
    EXPECT_EQ(memory.read_object<u8>(0x100000 + 0x1FFF).value(), static_cast<u8>(0x1FFF * 7));

    // The setup header is copied from the image; the loader's own fields are filled in.
    EXPECT_EQ(boot_param<u16>(memory, 0x206), 0x020Fu);
    EXPECT_EQ(boot_param<u32>(memory, 0x202), 0x53726448u); // "HdrS"
    EXPECT_EQ(boot_param<u32>(memory, 0x230), 0x200000u);
    EXPECT_EQ(boot_param<u8>(memory, 0x210), 0xFFu) << "type_of_loader: undefined";
    EXPECT_EQ(boot_param<u64>(memory, 0x070), 0xE0040u) << "acpi_rsdp_addr";
    u32 command_line = boot_param<u32>(memory, 0x228);
    char line[64] = {};
    ASSERT_TRUE(memory.read(command_line, std::span(reinterpret_cast<u8*>(line), 29)));
    EXPECT_STREQ(line, "console=ttyS0 root=/dev/ram0");

    // The initrd sits page-aligned at the top of RAM with its bytes.
    u32 initrd_at = boot_param<u32>(memory, 0x218);
    EXPECT_EQ(boot_param<u32>(memory, 0x21C), initrd.size());
    EXPECT_EQ(initrd_at % 4096, 0u);
    EXPECT_LE(initrd_at + initrd.size(), 128 * MiB);
    EXPECT_GT(initrd_at + initrd.size(), 128 * MiB - 4096);
    EXPECT_EQ(memory.read_object<u8>(initrd_at).value(), 0x5A);
    EXPECT_EQ(memory.read_object<u8>(initrd_at + initrd.size() - 1).value(), 0x5A);

    // The e820 table is kasou's memory map.
    auto map = build_memory_map(memory);
    ASSERT_EQ(boot_param<u8>(memory, 0x1E8), map.size());
    for (size_t i = 0; i < map.size(); ++i) {
        EXPECT_EQ(boot_param<u64>(memory, 0x2D0 + i * 20), map[i].address);
        EXPECT_EQ(boot_param<u64>(memory, 0x2D0 + i * 20 + 8), map[i].size);
        EXPECT_EQ(boot_param<u32>(memory, 0x2D0 + i * 20 + 16), static_cast<u32>(map[i].type));
    }
}

TEST(BzImage, InitrdStaysBelowInitrdAddrMax)
{
    auto memory = GuestMemory::create(256 * MiB).value();
    BzImageSpec spec;
    spec.initrd_addr_max = 64 * MiB - 1;
    std::vector<u8> initrd(10000, 1);
    ASSERT_TRUE(load_kernel(memory, build_bzimage(spec), { false, "", initrd, 0 }));
    u32 initrd_at = boot_param<u32>(memory, 0x218);
    EXPECT_LE(initrd_at + initrd.size(), 64 * MiB);
    EXPECT_GT(initrd_at, 64 * MiB - 2 * 4096 - initrd.size());
}

TEST(BzImage, RefusesCorruptHeaders)
{
    EXPECT_TRUE(mentions(refusal(std::vector<u8>(0x1000, 0)), "unrecognized kernel image"));

    BzImageSpec old_protocol;
    old_protocol.version = 0x0205;
    EXPECT_TRUE(mentions(refusal(build_bzimage(old_protocol)), "boot protocol 2.05; kasou needs 2.06"));

    BzImageSpec no_64bit;
    no_64bit.xloadflags = 0x2;
    EXPECT_TRUE(mentions(refusal(build_bzimage(no_64bit)), "XLF_KERNEL_64"));
    BzImageSpec before_xloadflags;
    before_xloadflags.version = 0x020B;
    EXPECT_TRUE(mentions(refusal(build_bzimage(before_xloadflags)), "no 64-bit entry point"));

    BzImageSpec fixed;
    fixed.relocatable = 0;
    EXPECT_TRUE(mentions(refusal(build_bzimage(fixed)), "not relocatable"));

    BzImageSpec misaligned;
    misaligned.kernel_alignment = 0x300000;
    EXPECT_TRUE(mentions(refusal(build_bzimage(misaligned)), "kernel_alignment 0x300000"));

    BzImageSpec absurd_setup;
    absurd_setup.setup_sects = 200;
    absurd_setup.kernel_size = 0x20000;
    EXPECT_TRUE(mentions(refusal(build_bzimage(absurd_setup)), "setup_sects is 200"));

    auto no_flag = build_bzimage();
    no_flag[0x1FE] = 0;
    EXPECT_TRUE(mentions(refusal(no_flag), "boot_flag"));

    auto long_header = build_bzimage();
    long_header[0x201] = 0xFF;
    EXPECT_TRUE(mentions(refusal(long_header), "setup header ends at 0x301"));
}

TEST(BzImage, RefusesTruncatedImages)
{
    auto image = build_bzimage();
    // Cut inside the protected-mode kernel: syssize says more than there is.
    image.resize(image.size() - 16);
    EXPECT_TRUE(mentions(refusal(image), "bzImage is truncated"));
    // Cut inside the setup header.
    image.resize(0x240);
    EXPECT_TRUE(mentions(refusal(image), "bzImage is truncated"));
    // Only the setup: no kernel at all.
    image = build_bzimage();
    image.resize(1024);
    EXPECT_TRUE(mentions(refusal(image), "bzImage is truncated"));
}

TEST(BzImage, RefusesWhatDoesNotFit)
{
    // pref_address 16 MiB + init_size 32 MiB: 48 MiB of RAM is just enough, 44 MiB is not.
    EXPECT_TRUE(mentions(refusal(build_bzimage(), {}, 44 * MiB), "--memory 44 MiB is too small"));
    auto memory = GuestMemory::create(48 * MiB).value();
    EXPECT_TRUE(load_kernel(memory, build_bzimage(), {}));

    BzImageSpec short_line;
    short_line.cmdline_size = 8;
    EXPECT_TRUE(mentions(refusal(build_bzimage(short_line), { false, "console=ttyS0" }), "this kernel takes at most 8"));

    // 64 MiB: the kernel needs up to 48 MiB, a 20 MiB initrd cannot fit above it.
    std::vector<u8> initrd(20 * MiB, 1);
    EXPECT_TRUE(mentions(refusal(build_bzimage(), { false, "", initrd, 0 }, 64 * MiB), "--initrd: initrd (20 MiB) does not fit"));
}

TEST(InitrdPlacement, HighestPageAlignedAddressBelowTheLimits)
{
    auto memory = GuestMemory::create(64 * MiB).value();
    EXPECT_EQ(initrd_address(memory, 4096, 0x200000, 4 * GiB).value(), 64 * MiB - 4096);
    EXPECT_EQ(initrd_address(memory, 4097, 0x200000, 4 * GiB).value(), 64 * MiB - 2 * 4096);
    EXPECT_EQ(initrd_address(memory, 100, 0x200000, 32 * MiB).value(), 32 * MiB - 4096);
    // Exactly the room there is, then one byte more.
    EXPECT_EQ(initrd_address(memory, 32 * MiB, 32 * MiB, 4 * GiB).value(), 32 * MiB);
    EXPECT_FALSE(initrd_address(memory, 32 * MiB + 1, 32 * MiB, 4 * GiB));
    // The floor is rounded up to a page.
    EXPECT_FALSE(initrd_address(memory, 32 * MiB, 32 * MiB + 1, 4 * GiB));
    // Above the MMIO hole is never used: with 4 GiB of RAM the initrd ends below 3 GiB.
    auto large = GuestMemory::create(4 * GiB).value();
    EXPECT_EQ(initrd_address(large, 4096, 0x200000, 4 * GiB).value(), GuestMemory::MMIO_HOLE_START - 4096);
}

TEST(PvhBootData, InitrdIsModuleZeroAndRsdpIsGiven)
{
    auto memory = GuestMemory::create(64 * MiB).value();
    auto image = test::build_elf64(0x100000, { { 0x100000, { 0xf4 }, 0x3000 } }, { { "Xen", 18, test::pvh_entry_description(0x100000) } });
    std::vector<u8> initrd(5000, 0x42);
    ASSERT_TRUE(load_kernel(memory, image, { false, "", initrd, 0xE0100 }));
    auto info = memory.read_object<HvmStartInfo>(boot_layout::START_INFO).value();
    EXPECT_EQ(info.rsdp_paddr, 0xE0100u);
    ASSERT_EQ(info.nr_modules, 1u);
    auto module = memory.read_object<HvmModlistEntry>(info.modlist_paddr).value();
    EXPECT_EQ(module.size, initrd.size());
    EXPECT_EQ(module.paddr, 64 * MiB - 2 * 4096);
    EXPECT_EQ(memory.read_object<u8>(module.paddr + initrd.size() - 1).value(), 0x42);

    // Without an initrd there is no module.
    auto plain = GuestMemory::create(64 * MiB).value();
    ASSERT_TRUE(load_kernel(plain, image, {}));
    EXPECT_EQ(plain.read_object<HvmStartInfo>(boot_layout::START_INFO).value().nr_modules, 0u);
}
