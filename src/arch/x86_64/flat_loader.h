#pragma once

#include <span>

#include "arch/x86_64/boot_entry.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// Loads a raw real-mode binary at 0x10000 and enters it at 1000:0000 with SP = 0xFFF0 (kasou's flat
// convention). The image must be non-empty and fit below the EBDA.
ErrorOr<BootEntry> load_flat(memory::GuestMemory const& memory, std::span<u8 const> image);

} // namespace kasou::arch::x86_64
