#pragma once

#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"
#include "vhost_user/protocol.h"

namespace kasou::vhost_user {

// The front-end's side of a vhost-user connection: kasou run's vhost-user-blk disk, the benchmark
// and the tests drive a back-end through it. Every request is sent with need_reply once REPLY_ACK
// is negotiated, so a back-end's refusal comes back as an error of the call that caused it.
// Blocking; one thread at a time.
class FrontendConnection {
public:
    // One region of the memory to share: where the guest sees it, where this process has it
    // mapped, and the descriptor (with the offset in it) the back-end maps it from.
    struct SharedRegion {
        u64 guest_physical;
        u64 size;
        u64 user_address;
        int fd;
        u64 fd_offset;
    };
    // A ring to start: its size, its three areas as addresses in this process, where the back-end
    // starts in the available ring, and the kick and call eventfds (call may be -1).
    struct RingSetup {
        u16 size;
        u64 descriptor;
        u64 available;
        u64 used;
        u16 base;
        int kick_fd;
        int call_fd;
    };

    static ErrorOr<FrontendConnection> connect(std::string const& path);

    // SET_OWNER, then the virtio features (those of `wanted` the back-end offers, with
    // PROTOCOL_FEATURES) and the protocol features MQ, REPLY_ACK and CONFIG (all needed). Returns the
    // virtio features agreed.
    ErrorOr<u64> negotiate(u64 wanted);
    ErrorOr<u16> queue_count();
    // GET_CONFIG of `size` bytes at `offset`.
    ErrorOr<std::vector<u8>> config(u32 offset, u32 size);
    ErrorOr<void> set_memory(std::span<SharedRegion const> regions);
    ErrorOr<void> start_ring(u16 index, RingSetup const& ring);
    // GET_VRING_BASE: stops the ring; where the back-end got to in the available ring.
    ErrorOr<u16> stop_ring(u16 index);

    int fd() const { return m_socket.get(); }

private:
    explicit FrontendConnection(Fd socket)
        : m_socket(std::move(socket))
    {
    }

    // Sends a request that has no reply of its own; waits for the acknowledgement once REPLY_ACK is on.
    ErrorOr<void> request(Request request, std::span<u8 const> payload, std::span<int const> fds = {});
    ErrorOr<std::vector<u8>> query(Request request, std::span<u8 const> payload, size_t reply_size);

    Fd m_socket;
    bool m_reply_ack { false };
};

} // namespace kasou::vhost_user
