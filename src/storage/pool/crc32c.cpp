#include "storage/pool/crc32c.h"

#include <algorithm>
#include <climits>

#include <isa-l/crc.h>

namespace kasou::storage {

// ISA-L's crc32_iscsi is CRC-32C with the register passed in and returned as is: the standard
// CRC-32C starts it at 0xFFFFFFFF and inverts the result. Its length is an int, so longer spans
// are fed in pieces, carrying the register from one to the next.
u32 crc32c(std::span<u8 const> data)
{
    u32 crc = 0xFFFFFFFF;
    while (!data.empty()) {
        size_t piece = std::min<size_t>(data.size(), INT_MAX);
        crc = crc32_iscsi(const_cast<u8*>(data.data()), static_cast<int>(piece), crc);
        data = data.subspan(piece);
    }
    return ~crc;
}

} // namespace kasou::storage
