#pragma once

#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// Where an initrd of `size` (> 0) bytes goes: as high as it can in guest RAM below 4 GiB, so its end is at
// most min(highest_end, end of the RAM under the MMIO hole), on a page boundary, at or above `lowest`
// (the end of everything the kernel occupies). Returns its guest-physical address, or one error that
// gives the initrd's size and the room there was. Writes nothing: the loader copies it once every
// other check has passed.
ErrorOr<u64> initrd_address(memory::GuestMemory const& memory, u64 size, u64 lowest, u64 highest_end);

} // namespace kasou::arch::x86_64
