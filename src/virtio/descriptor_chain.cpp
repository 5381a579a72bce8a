#include "virtio/descriptor_chain.h"

#include <algorithm>
#include <cstring>

namespace kasou::virtio {

namespace {

u64 total(std::vector<std::span<u8>> const& buffers)
{
    u64 sum = 0;
    for (auto const& buffer : buffers)
        sum += buffer.size();
    return sum;
}

// Walks `buffers` from byte `offset`, calling copy(buffer_part, position_in_data) for each piece.
template<class Copy>
u64 walk(std::vector<std::span<u8>> const& buffers, u64 offset, u64 length, Copy copy)
{
    u64 done = 0;
    for (auto const& buffer : buffers) {
        if (done == length)
            break;
        if (offset >= buffer.size()) {
            offset -= buffer.size();
            continue;
        }
        u64 count = std::min<u64>(buffer.size() - offset, length - done);
        copy(buffer.subspan(offset, count), done);
        done += count;
        offset = 0;
    }
    return done;
}

} // namespace

u64 DescriptorChain::readable_bytes() const { return total(readable); }
u64 DescriptorChain::writable_bytes() const { return total(writable); }

u64 DescriptorChain::read(u64 offset, std::span<u8> out) const
{
    return walk(readable, offset, out.size(), [&](std::span<u8> piece, u64 at) { std::memcpy(out.data() + at, piece.data(), piece.size()); });
}

u64 DescriptorChain::write(u64 offset, std::span<u8 const> data) const
{
    return walk(writable, offset, data.size(), [&](std::span<u8> piece, u64 at) { std::memcpy(piece.data(), data.data() + at, piece.size()); });
}

} // namespace kasou::virtio
