#pragma once

#include <span>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "virtio/descriptor_chain.h"

namespace kasou::virtio::blk {

// Request types and status values (virtio 1.2, 5.2.6).
constexpr u32 TYPE_IN = 0;
constexpr u32 TYPE_OUT = 1;
constexpr u32 TYPE_FLUSH = 4;
constexpr u32 TYPE_GET_ID = 8;
constexpr u32 TYPE_DISCARD = 11;
constexpr u32 TYPE_WRITE_ZEROES = 13;
constexpr u8 STATUS_OK = 0;
constexpr u8 STATUS_IOERR = 1;
constexpr u8 STATUS_UNSUPPORTED = 2;
constexpr u64 SECTOR_SIZE = 512;
constexpr u32 MAX_SEGMENTS = 256; // discard and write-zeroes ranges per request
constexpr size_t ID_BYTES = 20;

// One range of a discard or write-zeroes request (struct virtio_blk_discard_write_zeroes).
struct BlkRange {
    u64 sector;
    u32 sectors;
    u32 flags; // bit 0: unmap (write zeroes only)
};

// A virtio-blk request split into its parts, without touching the disk: the header's type and
// sector, the data buffers (device-readable for OUT, device-writable for IN and GET_ID, both
// without the header and status bytes) and the status byte's location. parse() fails only for a
// chain the driver must never send (no room for the header or the status byte): the device then
// needs a reset. Everything else wrong with a request (sizes, ranges) is answered with a status.
struct BlkRequest {
    u32 type { 0 };
    u64 sector { 0 };
    std::vector<std::span<u8>> data;
    u64 data_bytes { 0 };
    std::vector<BlkRange> ranges; // DISCARD and WRITE_ZEROES
    u8* status { nullptr };
    bool ranges_valid { true }; // false: a range list that is not a whole number of ranges, or too long

    static ErrorOr<BlkRequest> parse(DescriptorChain const& chain);
};

} // namespace kasou::virtio::blk
