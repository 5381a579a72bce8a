#pragma once

#include <span>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "virtio/descriptor_chain.h"

namespace kasou::virtio::net {

// Feature bits (virtio 1.2, 5.1.3).
constexpr u64 F_CSUM = 1ull << 0;
constexpr u64 F_GUEST_CSUM = 1ull << 1;
constexpr u64 F_MAC = 1ull << 5;
constexpr u64 F_GUEST_TSO4 = 1ull << 7;
constexpr u64 F_GUEST_TSO6 = 1ull << 8;
constexpr u64 F_GUEST_ECN = 1ull << 9;
constexpr u64 F_HOST_TSO4 = 1ull << 11;
constexpr u64 F_HOST_TSO6 = 1ull << 12;
constexpr u64 F_HOST_ECN = 1ull << 13;
constexpr u64 F_MRG_RXBUF = 1ull << 15;
constexpr u64 F_STATUS = 1ull << 16;

// struct virtio_net_hdr flags and gso_type values (5.1.6).
constexpr u8 HDR_F_NEEDS_CSUM = 1;
constexpr u8 GSO_NONE = 0;
constexpr u8 GSO_TCPV4 = 1;
constexpr u8 GSO_UDP = 3;
constexpr u8 GSO_TCPV6 = 4;
constexpr u8 GSO_ECN = 0x80;

// The header in front of every frame, in both directions (struct virtio_net_hdr with num_buffers,
// the only layout with VIRTIO_F_VERSION_1; little-endian like the host). The tap speaks the same
// header (IFF_VNET_HDR, TUNSETVNETHDRSZ 12), so it passes through unchanged.
struct NetHeader {
    u8 flags;
    u8 gso_type;
    u16 hdr_len;
    u16 gso_size;
    u16 csum_start;
    u16 csum_offset;
    u16 num_buffers;
};
static_assert(sizeof(NetHeader) == 12);
constexpr u64 HEADER_BYTES = sizeof(NetHeader);
// The largest packet, header included, in either direction: a 64 KiB GSO frame and its Ethernet
// header (the receive-buffer size 5.1.6.3.1 asks drivers for).
constexpr u64 MAX_PACKET_BYTES = 65562;

// A transmitq chain checked against the negotiated features: its header, and the whole packet
// (header first) as the device-readable buffers to write to the tap. parse() refuses what 5.1.6.2.1
// forbids a driver to send (the device then needs a reset): a chain shorter than the header or
// longer than MAX_PACKET_BYTES, device-writable buffers, receive-only flags, checksum offload or a
// GSO type that was not negotiated, GSO without a checksum request or without a segment size, and
// a checksum position outside the frame.
struct TransmitPacket {
    NetHeader header;
    std::vector<std::span<u8>> buffers;

    static ErrorOr<TransmitPacket> parse(DescriptorChain const& chain, u64 features);
};

// Checks a receiveq chain: device-writable only, with room for at least the header.
ErrorOr<void> check_receive_chain(DescriptorChain const& chain);

} // namespace kasou::virtio::net
