#pragma once

#include <span>

#include "arch/x86_64/boot_entry.h"
#include "arch/x86_64/kernel_options.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// The Linux x86 boot protocol (Documentation/arch/x86/boot.rst): offsets into a bzImage's first
// sectors and into the 4 KiB boot_params ("zero page", Documentation/arch/x86/zero-page.rst), whose
// setup header sits at the same offsets as in the image.
namespace linux_boot {
constexpr u64 ACPI_RSDP_ADDR = 0x070;   // boot_params, u64
constexpr u64 E820_ENTRIES = 0x1E8;     // boot_params, u8
constexpr u64 SETUP_HEADER = 0x1F1;     // start of the setup header
constexpr u64 SETUP_SECTS = 0x1F1;      // u8, 0 means 4
constexpr u64 SYSSIZE = 0x1F4;          // u32, protected-mode code size in 16-byte units (2.04+)
constexpr u64 BOOT_FLAG = 0x1FE;        // u16, 0xAA55
constexpr u64 JUMP = 0x200;             // u16; the byte at 0x201 gives the header's end: 0x202 + it
constexpr u64 HEADER_MAGIC = 0x202;     // "HdrS"
constexpr u64 VERSION = 0x206;          // u16
constexpr u64 TYPE_OF_LOADER = 0x210;   // u8
constexpr u64 RAMDISK_IMAGE = 0x218;    // u32
constexpr u64 RAMDISK_SIZE = 0x21C;     // u32
constexpr u64 CMD_LINE_PTR = 0x228;     // u32
constexpr u64 INITRD_ADDR_MAX = 0x22C;  // u32, highest address the initrd's last byte may have
constexpr u64 KERNEL_ALIGNMENT = 0x230; // u32
constexpr u64 RELOCATABLE_KERNEL = 0x234; // u8
constexpr u64 XLOADFLAGS = 0x236;       // u16 (2.12+)
constexpr u64 CMDLINE_SIZE = 0x238;     // u32 (2.06+), excluding the terminating NUL
constexpr u64 PREF_ADDRESS = 0x258;     // u64 (2.10+)
constexpr u64 INIT_SIZE = 0x260;        // u32 (2.10+), memory the kernel needs to decompress and start
constexpr u64 SETUP_HEADER_LIMIT = 0x290; // boot_params.edd_mbr_sig_buffer: the header never reaches it
constexpr u64 E820_TABLE = 0x2D0;       // boot_params, 20-byte entries
constexpr u64 E820_MAX_ENTRIES = 128;
constexpr u64 BOOT_PARAMS_SIZE = 0x1000;

constexpr u16 BOOT_FLAG_VALUE = 0xAA55;
constexpr u16 MIN_VERSION = 0x206;      // first protocol with cmdline_size
constexpr u16 XLF_VERSION = 0x20C;      // first protocol with xloadflags
constexpr u16 XLF_KERNEL_64 = 1u << 0;  // the kernel has the 64-bit entry at load address + 0x200
constexpr u8 LOADER_TYPE_UNDEFINED = 0xFF;
constexpr u64 ENTRY_64_OFFSET = 0x200;
constexpr u8 MAX_SETUP_SECTS = 64;      // the real-mode setup is at most 32 KiB
} // namespace linux_boot

// A bzImage's setup header, validated: every field kasou uses was read from inside the image and
// checked against the file and the protocol version, so loading needs no further checks on them.
struct BzImageHeader {
    u16 version { 0 };
    u64 setup_size { 0 };        // bytes of real-mode setup before the protected-mode kernel
    u64 kernel_size { 0 };       // bytes of protected-mode kernel in the file
    u64 header_end { 0 };        // one past the setup header's last byte
    u32 initrd_addr_max { 0 };
    u32 kernel_alignment { 0 };
    u32 cmdline_size { 0 };
    u64 pref_address { 0 };
    u32 init_size { 0 };

    static bool looks_like_bzimage(std::span<u8 const> image);
    // Refuses images that are not bzImages, use a protocol older than 2.06, lack the 64-bit entry
    // (XLF_KERNEL_64), are not relocatable, have an impossible alignment or setup size, or are
    // shorter than their header says.
    static ErrorOr<BzImageHeader> parse(std::span<u8 const> image);
};

// Loads a validated bzImage the way the 64-bit boot protocol asks: the protected-mode kernel at
// boot_layout::BZIMAGE_LOAD_ADDRESS, boot_params at boot_layout::START_INFO (setup header copied
// from the image, loader type, command line, e820 map, initrd, RSDP), entered in long mode at the
// load address + 0x200 with RSI = boot_params. Checks that the kernel can decompress in guest RAM and
// that the command line and initrd fit before writing anything.
ErrorOr<BootEntry> load_bzimage(memory::GuestMemory const& memory, std::span<u8 const> image, BzImageHeader const& header,
    KernelOptions const& options);

} // namespace kasou::arch::x86_64
