#include "virtio/vsock/vsock_packet.h"

#include <fmt/format.h>

#include "virtio/io_vectors.h"

namespace kasou::virtio::vsock {

ErrorOr<VsockPacket> VsockPacket::parse(DescriptorChain const& chain)
{
    if (!chain.writable.empty())
        return make_error(fmt::format("virtio-vsock: tx chain {} has {} device-writable bytes", chain.head, chain.writable_bytes()));
    u64 bytes = chain.readable_bytes();
    if (bytes < HEADER_BYTES)
        return make_error(fmt::format("virtio-vsock: tx packet of {} bytes is shorter than its {}-byte header", bytes, HEADER_BYTES));
    VsockPacket packet;
    chain.read(0, std::span(reinterpret_cast<u8*>(&packet.header), HEADER_BYTES));
    u32 length = packet.header.len;
    if (length > MAX_PAYLOAD)
        return make_error(fmt::format("virtio-vsock: tx packet says its payload is {} bytes, over the {}-byte limit", length, MAX_PAYLOAD));
    if (length > bytes - HEADER_BYTES)
        return make_error(fmt::format("virtio-vsock: tx packet says its payload is {} bytes, but {} follow the header", length,
            bytes - HEADER_BYTES));
    packet.payload = io_vectors(chain.readable, HEADER_BYTES, length);
    return packet;
}

ErrorOr<void> check_receive_chain(DescriptorChain const& chain)
{
    if (!chain.readable.empty())
        return make_error(fmt::format("virtio-vsock: rx chain {} has {} device-readable bytes", chain.head, chain.readable_bytes()));
    if (chain.writable_bytes() < HEADER_BYTES)
        return make_error(fmt::format("virtio-vsock: rx buffer of {} bytes cannot hold the {}-byte header", chain.writable_bytes(), HEADER_BYTES));
    return {};
}

} // namespace kasou::virtio::vsock
