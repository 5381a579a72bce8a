#include "arch/x86_64/bzimage.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/initrd.h"
#include "arch/x86_64/memory_map.h"
#include "base/size.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

using namespace linux_boot;

namespace {

template<class T>
T read_le(std::span<u8 const> bytes, u64 offset)
{
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

template<class T>
void write_le(std::span<u8> bytes, u64 offset, T value)
{
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// One struct boot_e820_entry: packed u64 address, u64 size, u32 type.
constexpr u64 E820_ENTRY_SIZE = 20;

} // namespace

bool BzImageHeader::looks_like_bzimage(std::span<u8 const> image)
{
    return image.size() >= HEADER_MAGIC + 4 && std::memcmp(image.data() + HEADER_MAGIC, "HdrS", 4) == 0;
}

ErrorOr<BzImageHeader> BzImageHeader::parse(std::span<u8 const> image)
{
    if (!looks_like_bzimage(image))
        return make_error("not a Linux bzImage: no \"HdrS\" setup header signature at offset 0x202");
    if (image.size() < INIT_SIZE + 4)
        return make_error(fmt::format("bzImage is truncated: {} bytes, shorter than its setup header", image.size()));
    BzImageHeader header;
    header.version = read_le<u16>(image, VERSION);
    if (header.version < MIN_VERSION)
        return make_error(ErrorKind::Unsupported, fmt::format("bzImage uses boot protocol {}.{:02}; kasou needs 2.06 or later (Linux 2.6.22+)",
            header.version >> 8, header.version & 0xFF));
    if (read_le<u16>(image, BOOT_FLAG) != BOOT_FLAG_VALUE)
        return make_error(fmt::format("bzImage boot_flag is {:#06x}, not 0xaa55", read_le<u16>(image, BOOT_FLAG)));
    if (header.version < XLF_VERSION || !(read_le<u16>(image, XLOADFLAGS) & XLF_KERNEL_64))
        return make_error(ErrorKind::Unsupported, "bzImage has no 64-bit entry point (XLF_KERNEL_64 is not set in xloadflags, boot protocol 2.12+); "
                          "kasou boots x86-64 kernels only");
    if (image[RELOCATABLE_KERNEL] == 0)
        return make_error(ErrorKind::Unsupported, "bzImage is not relocatable (relocatable_kernel = 0); kasou needs a kernel built with CONFIG_RELOCATABLE");

    u8 setup_sects = image[SETUP_SECTS];
    if (setup_sects > MAX_SETUP_SECTS)
        return make_error(fmt::format("bzImage setup_sects is {}: at most {} fit the 32 KiB real-mode setup", setup_sects, MAX_SETUP_SECTS));
    header.setup_size = (u64 { setup_sects == 0 ? u8 { 4 } : setup_sects } + 1) * 512;
    header.header_end = JUMP + 2 + image[JUMP + 1];
    if (header.header_end > SETUP_HEADER_LIMIT || header.header_end < INIT_SIZE + 4)
        return make_error(fmt::format("bzImage setup header ends at {:#x}; it must end between {:#x} and {:#x}", header.header_end,
            INIT_SIZE + 4, SETUP_HEADER_LIMIT));
    u64 declared_kernel_size = u64 { read_le<u32>(image, SYSSIZE) } * 16;
    if (header.setup_size >= image.size() || image.size() - header.setup_size < declared_kernel_size || declared_kernel_size == 0)
        return make_error(fmt::format("bzImage is truncated: {} bytes, but its header declares {} bytes of setup and {} of kernel",
            image.size(), header.setup_size, declared_kernel_size));
    header.kernel_size = image.size() - header.setup_size;

    header.kernel_alignment = read_le<u32>(image, KERNEL_ALIGNMENT);
    if (header.kernel_alignment < 4096 || !std::has_single_bit(header.kernel_alignment))
        return make_error(fmt::format("bzImage kernel_alignment {:#x} is not a power of two of at least 4 KiB", header.kernel_alignment));
    header.initrd_addr_max = read_le<u32>(image, INITRD_ADDR_MAX);
    header.cmdline_size = read_le<u32>(image, CMDLINE_SIZE);
    header.pref_address = read_le<u64>(image, PREF_ADDRESS);
    header.init_size = read_le<u32>(image, INIT_SIZE);
    if (header.init_size < header.kernel_size)
        return make_error(fmt::format("bzImage init_size {:#x} is smaller than the kernel itself ({:#x})", header.init_size, header.kernel_size));
    if (header.pref_address % header.kernel_alignment != 0 || header.pref_address >= memory::GuestMemory::MMIO_HOLE_START)
        return make_error(fmt::format("bzImage pref_address {:#x} is not a {:#x}-aligned address below 3 GiB", header.pref_address,
            header.kernel_alignment));
    return header;
}

ErrorOr<BootEntry> load_bzimage(memory::GuestMemory const& memory, std::span<u8 const> image, BzImageHeader const& header,
    KernelOptions const& options)
{
    auto const& command_line = options.command_line;
    if (command_line.size() > header.cmdline_size || command_line.size() + 1 > boot_layout::COMMAND_LINE_MAX)
        return make_error(fmt::format("command line is {} bytes; this kernel takes at most {}", command_line.size(),
            std::min<u64>(header.cmdline_size, boot_layout::COMMAND_LINE_MAX - 1)));
    // The decompressor runs in place at the (aligned) load address or at pref_address, whichever is
    // higher, and needs init_size bytes there.
    u64 kernel_end = std::max(boot_layout::BZIMAGE_LOAD_ADDRESS, header.pref_address) + header.init_size;
    u64 low_ram_end = memory.regions().front().end();
    if (kernel_end > low_ram_end)
        return make_error(fmt::format("this kernel needs guest RAM up to {:#x} to decompress ({} from {:#x}); --memory {} is too small",
            kernel_end, format_size(header.init_size), std::max(boot_layout::BZIMAGE_LOAD_ADDRESS, header.pref_address),
            format_size(memory.size())));
    auto map = build_memory_map(memory);
    if (map.size() > E820_MAX_ENTRIES)
        return make_error("memory map has too many entries for boot_params");
    if (!memory.contains(boot_layout::RESERVED_START, boot_layout::RESERVED_END - boot_layout::RESERVED_START))
        return make_error("guest memory is too small for the Linux boot data");
    u64 initrd_at = 0;
    if (!options.initrd.empty()) {
        u64 highest_end = u64 { header.initrd_addr_max } + 1;
        initrd_at = TRY(initrd_address(memory, options.initrd.size(), kernel_end, highest_end)
                            .map_error([](Error const& error) { return error.with_prefix("--initrd"); }));
    }

    TRY(memory.write(boot_layout::BZIMAGE_LOAD_ADDRESS, image.subspan(header.setup_size)));
    if (initrd_at)
        TRY(memory.write(initrd_at, options.initrd));
    auto line = TRY(memory.span(boot_layout::COMMAND_LINE, command_line.size() + 1));
    std::memcpy(line.data(), command_line.c_str(), command_line.size() + 1);

    std::array<u8, BOOT_PARAMS_SIZE> params {};
    std::span<u8> zero_page(params);
    std::copy(image.begin() + SETUP_HEADER, image.begin() + static_cast<std::ptrdiff_t>(header.header_end), params.begin() + SETUP_HEADER);
    zero_page[TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    write_le<u32>(zero_page, CMD_LINE_PTR, static_cast<u32>(boot_layout::COMMAND_LINE));
    write_le<u32>(zero_page, RAMDISK_IMAGE, static_cast<u32>(initrd_at));
    write_le<u32>(zero_page, RAMDISK_SIZE, static_cast<u32>(options.initrd.size()));
    write_le<u64>(zero_page, ACPI_RSDP_ADDR, options.acpi_rsdp);
    zero_page[E820_ENTRIES] = static_cast<u8>(map.size());
    for (size_t i = 0; i < map.size(); ++i) {
        u64 entry = E820_TABLE + i * E820_ENTRY_SIZE;
        write_le<u64>(zero_page, entry, map[i].address);
        write_le<u64>(zero_page, entry + 8, map[i].size);
        write_le<u32>(zero_page, entry + 16, static_cast<u32>(map[i].type));
    }
    TRY(memory.write(boot_layout::START_INFO, zero_page));

    BootEntry entry;
    entry.mode = EntryMode::Long64;
    entry.instruction_pointer = boot_layout::BZIMAGE_LOAD_ADDRESS + ENTRY_64_OFFSET;
    entry.stack_pointer = boot_layout::BOOT_STACK_TOP;
    entry.rsi = boot_layout::START_INFO;
    return entry;
}

} // namespace kasou::arch::x86_64
