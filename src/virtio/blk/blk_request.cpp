#include "virtio/blk/blk_request.h"

#include <cstring>

#include <fmt/format.h>

namespace kasou::virtio::blk {

namespace {

constexpr u64 HEADER_BYTES = 16; // struct virtio_blk_req: type, reserved, sector

// The pieces of `buffers` from byte `skip` on, `length` bytes in all.
std::vector<std::span<u8>> slice(std::vector<std::span<u8>> const& buffers, u64 skip, u64 length)
{
    std::vector<std::span<u8>> pieces;
    for (auto const& buffer : buffers) {
        if (length == 0)
            break;
        if (skip >= buffer.size()) {
            skip -= buffer.size();
            continue;
        }
        u64 count = std::min<u64>(buffer.size() - skip, length);
        pieces.push_back(buffer.subspan(skip, count));
        length -= count;
        skip = 0;
    }
    return pieces;
}

} // namespace

ErrorOr<BlkRequest> BlkRequest::parse(DescriptorChain const& chain)
{
    if (chain.readable_bytes() < HEADER_BYTES)
        return make_error(fmt::format("virtio-blk request with {} readable bytes, shorter than its 16-byte header", chain.readable_bytes()));
    u64 writable = chain.writable_bytes();
    if (writable == 0)
        return make_error("virtio-blk request without a writable status byte");
    BlkRequest request;
    u8 header[HEADER_BYTES];
    chain.read(0, header);
    std::memcpy(&request.type, header, 4);
    std::memcpy(&request.sector, header + 8, 8);
    auto const& last = chain.writable.back();
    request.status = &last[last.size() - 1];

    switch (request.type) {
    case TYPE_OUT:
        request.data = slice(chain.readable, HEADER_BYTES, chain.readable_bytes() - HEADER_BYTES);
        request.data_bytes = chain.readable_bytes() - HEADER_BYTES;
        break;
    case TYPE_IN:
    case TYPE_GET_ID:
        request.data = slice(chain.writable, 0, writable - 1);
        request.data_bytes = writable - 1;
        break;
    case TYPE_DISCARD:
    case TYPE_WRITE_ZEROES: {
        u64 bytes = chain.readable_bytes() - HEADER_BYTES;
        if (bytes == 0 || bytes % sizeof(BlkRange) != 0 || bytes / sizeof(BlkRange) > MAX_SEGMENTS) {
            request.ranges_valid = false;
            break;
        }
        request.ranges.resize(bytes / sizeof(BlkRange));
        chain.read(HEADER_BYTES, std::span(reinterpret_cast<u8*>(request.ranges.data()), bytes));
        break;
    }
    default:
        break;
    }
    return request;
}

} // namespace kasou::virtio::blk
