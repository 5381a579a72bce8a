#pragma once

#include <vector>

#include "base/types.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// E820 memory types (ACPI 6.5, 15.3 "Address Range Types"), the same numbers PVH uses.
enum class MemoryType : u32 {
    Ram = 1,
    Reserved = 2,
};

struct MemoryMapEntry {
    u64 address { 0 };
    u64 size { 0 };
    MemoryType type { MemoryType::Ram };
};

// The memory map a guest is told about, sorted and disjoint: conventional memory below the EBDA,
// the reserved legacy area up to 1 MiB, RAM to the MMIO hole and RAM above 4 GiB.
std::vector<MemoryMapEntry> build_memory_map(memory::GuestMemory const& memory);

} // namespace kasou::arch::x86_64
