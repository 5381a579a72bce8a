#include "arch/x86_64/memory_map.h"

#include "arch/x86_64/boot_layout.h"

namespace kasou::arch::x86_64 {

std::vector<MemoryMapEntry> build_memory_map(memory::GuestMemory const& memory)
{
    std::vector<MemoryMapEntry> map;
    for (auto const& region : memory.regions()) {
        if (region.guest_physical != 0) {
            map.push_back({ region.guest_physical, region.size(), MemoryType::Ram });
            continue;
        }
        // The first region starts at 0 and holds the legacy hole between the EBDA and 1 MiB.
        u64 end = region.end();
        map.push_back({ 0, std::min(end, boot_layout::EBDA_START), MemoryType::Ram });
        if (end > boot_layout::EBDA_START)
            map.push_back({ boot_layout::EBDA_START, std::min(end, boot_layout::HIGH_MEMORY_START) - boot_layout::EBDA_START,
                MemoryType::Reserved });
        if (end > boot_layout::HIGH_MEMORY_START)
            map.push_back({ boot_layout::HIGH_MEMORY_START, end - boot_layout::HIGH_MEMORY_START, MemoryType::Ram });
    }
    return map;
}

} // namespace kasou::arch::x86_64
