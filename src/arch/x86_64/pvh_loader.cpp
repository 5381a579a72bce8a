#include "arch/x86_64/pvh_loader.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/initrd.h"
#include "arch/x86_64/memory_map.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

ErrorOr<u32> pvh_entry_point(ElfImage const& elf)
{
    auto const* note = elf.find_note("Xen", XEN_ELFNOTE_PHYS32_ENTRY);
    if (!note)
        return make_error(ErrorKind::Unsupported, "ELF image has no PVH entry note (Xen note XEN_ELFNOTE_PHYS32_ENTRY); kasou boots ELF kernels through PVH");
    if (note->description.size() == 4) {
        u32 entry;
        std::memcpy(&entry, note->description.data(), 4);
        return entry;
    }
    if (note->description.size() == 8) {
        u64 entry;
        std::memcpy(&entry, note->description.data(), 8);
        if (entry > 0xFFFF'FFFF)
            return make_error(fmt::format("PVH entry point {:#x} is above 4 GiB", entry));
        return static_cast<u32>(entry);
    }
    return make_error(fmt::format("PVH entry note has a {}-byte value; 4 or 8 expected", note->description.size()));
}

ErrorOr<BootEntry> load_pvh(memory::GuestMemory const& memory, std::span<u8 const> image, ElfImage const& elf,
    KernelOptions const& options)
{
    auto const& command_line = options.command_line;
    u32 entry_point = TRY(pvh_entry_point(elf));
    if (command_line.size() + 1 > boot_layout::COMMAND_LINE_MAX)
        return make_error(fmt::format("command line is {} bytes; at most {} fit", command_line.size(), boot_layout::COMMAND_LINE_MAX - 1));
    auto map = build_memory_map(memory);
    if (map.size() > boot_layout::MEMORY_MAP_MAX_ENTRIES)
        return make_error("memory map has too many entries");
    if (!memory.contains(boot_layout::RESERVED_START, boot_layout::RESERVED_END - boot_layout::RESERVED_START))
        return make_error("guest memory is too small for the PVH boot data");

    bool entry_inside = false;
    for (auto const& segment : elf.segments) {
        if (!memory.contains(segment.physical_address, segment.memory_size))
            return make_error(fmt::format("ELF segment at {:#x} (+{:#x}) does not fit in guest RAM ({} MiB, up to {:#x})",
                segment.physical_address, segment.memory_size, memory.size() / (1024 * 1024), memory.end()));
        if (segment.physical_address < boot_layout::RESERVED_END && boot_layout::RESERVED_START < segment.physical_address + segment.memory_size)
            return make_error(fmt::format("ELF segment at {:#x} (+{:#x}) overlaps kasou's boot data at [{:#x}, {:#x})",
                segment.physical_address, segment.memory_size, boot_layout::RESERVED_START, boot_layout::RESERVED_END));
        if (entry_point >= segment.physical_address && entry_point - segment.physical_address < segment.memory_size)
            entry_inside = true;
    }
    if (!entry_inside)
        return make_error(fmt::format("PVH entry point {:#x} is not inside any loadable segment", entry_point));
    u64 initrd_at = 0;
    if (!options.initrd.empty()) {
        u64 kernel_end = boot_layout::RESERVED_END;
        for (auto const& segment : elf.segments)
            kernel_end = std::max(kernel_end, segment.physical_address + segment.memory_size);
        initrd_at = TRY(initrd_address(memory, options.initrd.size(), kernel_end, memory::GuestMemory::MMIO_HOLE_START)
                            .map_error([](Error const& error) { return error.with_prefix("--initrd"); }));
    }

    for (auto const& segment : elf.segments) {
        auto destination = TRY(memory.span(segment.physical_address, segment.memory_size));
        std::memcpy(destination.data(), image.data() + segment.file_offset, segment.file_size);
        std::memset(destination.data() + segment.file_size, 0, segment.memory_size - segment.file_size);
    }

    auto line = TRY(memory.span(boot_layout::COMMAND_LINE, command_line.size() + 1));
    std::memcpy(line.data(), command_line.c_str(), command_line.size() + 1);
    for (size_t i = 0; i < map.size(); ++i) {
        HvmMemmapEntry entry { map[i].address, map[i].size, static_cast<u32>(map[i].type), 0 };
        TRY(memory.write_object(boot_layout::MEMORY_MAP + i * sizeof(HvmMemmapEntry), entry));
    }
    HvmStartInfo start_info {};
    if (initrd_at) {
        TRY(memory.write(initrd_at, options.initrd));
        TRY(memory.write_object(boot_layout::MODULE_LIST, HvmModlistEntry { initrd_at, options.initrd.size(), 0, 0 }));
        start_info.nr_modules = 1;
        start_info.modlist_paddr = boot_layout::MODULE_LIST;
    }
    start_info.rsdp_paddr = options.acpi_rsdp;
    start_info.magic = HVM_START_MAGIC;
    start_info.version = 1;
    start_info.cmdline_paddr = boot_layout::COMMAND_LINE;
    start_info.memmap_paddr = boot_layout::MEMORY_MAP;
    start_info.memmap_entries = static_cast<u32>(map.size());
    TRY(memory.write_object(boot_layout::START_INFO, start_info));

    BootEntry entry;
    entry.mode = EntryMode::Protected32;
    entry.instruction_pointer = entry_point;
    entry.rbx = boot_layout::START_INFO;
    return entry;
}

} // namespace kasou::arch::x86_64
