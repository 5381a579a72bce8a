#include "arch/x86_64/flat_loader.h"

#include <fmt/format.h>

#include "arch/x86_64/boot_layout.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

ErrorOr<BootEntry> load_flat(memory::GuestMemory const& memory, std::span<u8 const> image)
{
    if (image.empty())
        return make_error("flat kernel image is empty");
    if (image.size() > boot_layout::FLAT_MAX_SIZE)
        return make_error(fmt::format("flat kernel image is {} bytes; at most {} fit between {:#x} and the EBDA", image.size(),
            boot_layout::FLAT_MAX_SIZE, boot_layout::FLAT_LOAD_ADDRESS));
    if (!memory.contains(boot_layout::FLAT_LOAD_ADDRESS, boot_layout::FLAT_MAX_SIZE))
        return make_error("guest memory is too small for a flat kernel (it needs 640 KiB)");
    TRY(memory.write(boot_layout::FLAT_LOAD_ADDRESS, image));
    BootEntry entry;
    entry.mode = EntryMode::Real;
    entry.real_mode_segment = boot_layout::FLAT_SEGMENT;
    entry.instruction_pointer = 0;
    entry.stack_pointer = 0xFFF0;
    return entry;
}

} // namespace kasou::arch::x86_64
