#pragma once

#include <span>
#include <vector>
#include <sys/uio.h>

#include "base/error.h"
#include "base/types.h"
#include "virtio/descriptor_chain.h"

namespace kasou::virtio::vsock {

// Addresses, socket types, operations and shutdown flags (virtio 1.2, 5.10.6).
constexpr u64 HOST_CID = 2;
constexpr u16 TYPE_STREAM = 1;
constexpr u16 OP_REQUEST = 1;
constexpr u16 OP_RESPONSE = 2;
constexpr u16 OP_RST = 3;
constexpr u16 OP_SHUTDOWN = 4;
constexpr u16 OP_RW = 5;
constexpr u16 OP_CREDIT_UPDATE = 6;
constexpr u16 OP_CREDIT_REQUEST = 7;
constexpr u32 SHUTDOWN_RCV = 1;
constexpr u32 SHUTDOWN_SEND = 2;

// struct virtio_vsock_hdr (5.10.6), little-endian like the host, packed to 44 bytes.
struct [[gnu::packed]] VsockHeader {
    u64 src_cid;
    u64 dst_cid;
    u32 src_port;
    u32 dst_port;
    u32 len;
    u16 type;
    u16 op;
    u32 flags;
    u32 buf_alloc;
    u32 fwd_cnt;
};
static_assert(sizeof(VsockHeader) == 44);
constexpr u64 HEADER_BYTES = sizeof(VsockHeader);
// The largest payload kasou accepts in, or puts into, one packet (Linux sends at most 64 KiB).
constexpr u32 MAX_PAYLOAD = 64 * 1024;

// A tx-queue chain split into its header and payload, without acting on it. parse() refuses what
// no driver may send (the device then needs a reset): device-writable buffers, fewer bytes than the
// header, a payload over MAX_PAYLOAD, or a `len` larger than the bytes that follow the header.
// Everything else (wrong addresses, types, operations, ports) is for the device to answer, with a
// RST where the protocol has one.
struct VsockPacket {
    VsockHeader header;
    std::vector<iovec> payload; // exactly header.len bytes of guest RAM

    static ErrorOr<VsockPacket> parse(DescriptorChain const& chain);
};

// Checks an rx-queue chain: device-writable only, with room for at least the header.
ErrorOr<void> check_receive_chain(DescriptorChain const& chain);

} // namespace kasou::virtio::vsock
