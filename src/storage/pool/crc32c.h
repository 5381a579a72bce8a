#pragma once

#include <span>

#include "base/types.h"

namespace kasou::storage {

// CRC-32C (Castagnoli), the checksum of every metadata block kasou writes to a member disk.
u32 crc32c(std::span<u8 const> data);

} // namespace kasou::storage
