#include "virtio/net/net_header.h"

#include <cstring>

#include <fmt/format.h>

namespace kasou::virtio::net {

namespace {

ErrorOr<void> check_gso(NetHeader const& header, u64 features, u64 frame_bytes)
{
    u8 type = header.gso_type & ~GSO_ECN;
    if (type == GSO_NONE && !(header.gso_type & GSO_ECN))
        return {};
    u64 needed = type == GSO_TCPV4 ? F_HOST_TSO4 : type == GSO_TCPV6 ? F_HOST_TSO6 : 0;
    if (needed == 0 || !(features & needed))
        return make_error(fmt::format("virtio-net: transmit header has GSO type {:#x}, which was not negotiated", header.gso_type));
    if ((header.gso_type & GSO_ECN) && !(features & F_HOST_ECN))
        return make_error("virtio-net: transmit header has the GSO ECN bit, but HOST_ECN was not negotiated");
    if (!(header.flags & HDR_F_NEEDS_CSUM))
        return make_error("virtio-net: transmit header asks for GSO without NEEDS_CSUM");
    if (header.gso_size == 0)
        return make_error("virtio-net: transmit header asks for GSO with a segment size of 0");
    if (header.hdr_len > frame_bytes)
        return make_error(fmt::format("virtio-net: transmit header length {} exceeds the {}-byte frame", header.hdr_len, frame_bytes));
    return {};
}

} // namespace

ErrorOr<TransmitPacket> TransmitPacket::parse(DescriptorChain const& chain, u64 features)
{
    if (!chain.writable.empty())
        return make_error(fmt::format("virtio-net: transmitq chain {} has {} device-writable bytes", chain.head, chain.writable_bytes()));
    u64 bytes = chain.readable_bytes();
    if (bytes < HEADER_BYTES)
        return make_error(fmt::format("virtio-net: transmit packet of {} bytes is shorter than its {}-byte header", bytes, HEADER_BYTES));
    if (bytes > MAX_PACKET_BYTES)
        return make_error(fmt::format("virtio-net: transmit packet of {} bytes exceeds the {}-byte limit", bytes, MAX_PACKET_BYTES));
    TransmitPacket packet;
    chain.read(0, std::span(reinterpret_cast<u8*>(&packet.header), HEADER_BYTES));
    NetHeader const& header = packet.header;
    u64 frame_bytes = bytes - HEADER_BYTES;
    if (header.flags & ~HDR_F_NEEDS_CSUM)
        return make_error(fmt::format("virtio-net: transmit header has flags {:#x}; only NEEDS_CSUM is for the device", header.flags));
    if (header.flags & HDR_F_NEEDS_CSUM) {
        if (!(features & F_CSUM))
            return make_error("virtio-net: transmit header asks for a checksum, but CSUM was not negotiated");
        if (u64 { header.csum_start } + header.csum_offset + 2 > frame_bytes)
            return make_error(fmt::format("virtio-net: checksum at {} + {} lies outside the {}-byte frame", header.csum_start,
                header.csum_offset, frame_bytes));
    }
    if (auto gso = check_gso(header, features, frame_bytes); !gso)
        return tl::unexpected(gso.error());
    packet.buffers = chain.readable;
    return packet;
}

ErrorOr<void> check_receive_chain(DescriptorChain const& chain)
{
    if (!chain.readable.empty())
        return make_error(fmt::format("virtio-net: receiveq chain {} has {} device-readable bytes", chain.head, chain.readable_bytes()));
    if (chain.writable_bytes() < HEADER_BYTES)
        return make_error(fmt::format("virtio-net: receive buffer of {} bytes cannot hold the {}-byte header", chain.writable_bytes(), HEADER_BYTES));
    return {};
}

} // namespace kasou::virtio::net
