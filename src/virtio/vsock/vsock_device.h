#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/event_fd.h"
#include "virtio/host_events.h"
#include "virtio/virtio_device.h"
#include "virtio/vsock/vsock_packet.h"

namespace kasou::virtio::vsock {

constexpr u16 RXQ = 0;
constexpr u16 TXQ = 1;
constexpr u16 EVENTQ = 2;
// The receive buffer kasou gives each connection for guest-to-host bytes (buf_alloc).
constexpr u32 BUFFER_BYTES = 256 * 1024;
// Host ports of host-initiated connections are handed out from here up, as Firecracker does.
constexpr u32 FIRST_HOST_PORT = 1u << 30;
// Connections (open or waiting for their CONNECT line) one device keeps by default, so a guest or
// a host program cannot use up kasou's descriptors and memory; beyond it requests get a RST (from
// the guest) or are closed (from the host).
constexpr size_t DEFAULT_MAX_CONNECTIONS = 1024;
constexpr size_t MAX_MAX_CONNECTIONS = 65536;
// RSTs (to connections that do not exist, or that kasou just closed) waiting for rx buffers; more
// are dropped and counted. A guest that sends to nowhere without reading its rx queue gets no more.
constexpr size_t MAX_PENDING_RESETS = 256;

struct VsockOptions {
    u64 guest_cid { 3 };   // 3 to 0xFFFFFFFE
    std::string uds_path {}; // must not exist yet; removed again when the device goes
    size_t max_connections { DEFAULT_MAX_CONNECTIONS }; // 1 to MAX_MAX_CONNECTIONS
};

// What the device refused to queue, for logs and tests. Written by the I/O thread only.
struct VsockStats {
    u64 resets_dropped { 0 };    // RSTs not sent: MAX_PENDING_RESETS were waiting already
    u64 replies_coalesced { 0 }; // control packets merged into one of the same kind still waiting
};

// virtio-vsock (virtio 1.2, 5.10), stream sockets, with a userspace back-end that maps guest vsock
// ports to host Unix sockets the way Firecracker does:
// - a guest connecting to host (CID 2) port P is connected to the Unix socket `uds_path + "_" + P`;
//   when nobody listens there the guest gets a RST;
// - a host program connects to the Unix socket at `uds_path`, sends "CONNECT P\n", and once the
//   guest listening on port P accepts, reads "OK H\n", H being the host port kasou assigned; then
//   the connection carries the stream. A refused or malformed request just closes the socket.
// Flow control follows 5.10.6.3: guest bytes are taken only within the BUFFER_BYTES kasou
// advertises (a guest that overruns it gets a RST) and wait in that buffer while the host socket
// is full; host bytes are read only while the guest has credit, straight into its rx buffers.
// Control packets produced while serving the tx queue wake the I/O thread (an eventfd among the
// host events) to go out on the rx queue.
// Nothing a guest sends grows kasou without bound, whether or not it posts rx buffers: a live
// connection has at most one control packet of each kind waiting (a flag each; a CREDIT_REQUEST
// flood leaves one CREDIT_UPDATE, carrying the fwd_cnt of the moment it goes out), RSTs wait at
// most MAX_PENDING_RESETS deep (more are dropped and counted), connections are at most
// max_connections, each holding at most BUFFER_BYTES of guest bytes. The event queue is left alone: kasou never migrates, so never sends TRANSPORT_RESET.
// All state belongs to the I/O thread; reset() (after the transport stopped it) closes every
// connection.
//
// kasou wires it as `--vsock cid=N,uds=PATH`: VsockDevice::create({ N, PATH }).
class VsockDevice final : public VirtioDevice {
public:
    static ErrorOr<std::shared_ptr<VsockDevice>> create(VsockOptions options);
    ~VsockDevice() override;

    u16 device_type() const override { return DEVICE_VSOCK; }
    u64 device_features() const override { return 0; } // stream only (5.10.3)
    u16 queue_count() const override { return 3; }
    void read_config(u64 offset, std::span<u8> data) override;
    ErrorOr<void> process(u16 index, SplitQueue& queue) override;
    void reset() override;
    int host_event_fd() const override { return m_events.fd(); }
    ErrorOr<void> process_host_events(std::span<SplitQueue* const> queues) override;

    size_t connection_count() const { return m_connections.size(); }
    // Control packets waiting for rx buffers (RSTs and those of live connections).
    size_t pending_control_count() const;
    VsockStats const& stats() const { return m_stats; }

private:
    using Key = std::pair<u32, u32>; // host port, guest port
    enum class State {
        Connecting,  // host-initiated: REQUEST sent, the guest has not answered
        Established,
    };
    struct Connection {
        Fd socket;
        u64 token { 0 };
        State state { State::Established };
        u32 peer_buf_alloc { 0 }; // the guest's receive buffer ...
        u32 peer_fwd_cnt { 0 };   // ... and how much of what kasou sent it has consumed
        u32 rx_cnt { 0 };         // bytes sent to the guest
        u32 fwd_cnt { 0 };        // guest bytes the host socket took
        u32 told_fwd_cnt { 0 };   // fwd_cnt as last told to the guest
        std::vector<u8> to_host;  // guest bytes the host socket has not taken yet
        u32 guest_shutdown { 0 }; // SHUTDOWN_* flags the guest sent
        bool readable { false };  // the host socket signalled input not yet read to EAGAIN
        bool host_done { false };  // the host socket reached end of stream: SHUTDOWN(SEND) sent
        bool queued { false };    // in m_readable
        bool credit_requested { false };
        bool write_shut { false };
        u8 controls { 0 };        // CONTROL_* packets waiting; non-zero exactly while in m_control

        u32 guest_credit() const;
    };
    // The control packets a live connection can have waiting, one of each kind, in the order they
    // go out.
    enum ControlBit : u8 {
        CONTROL_RESPONSE = 1,
        CONTROL_REQUEST = 2,
        CONTROL_CREDIT_UPDATE = 4,
        CONTROL_CREDIT_REQUEST = 8,
        CONTROL_SHUTDOWN = 16, // always SHUTDOWN_SEND: the host's stream ended
    };
    struct Control {
        Key key;
        u16 op;
        u32 flags;
    };
    struct PendingHost { // a host connection that has not sent its CONNECT line yet
        Fd socket;
        std::string line;
    };

    VsockDevice(VsockOptions options, Fd listener, HostEvents events, EventFd wakeup);

    ErrorOr<void> transmit(SplitQueue& queue);
    ErrorOr<void> deliver(SplitQueue& queue);
    void handle(VsockPacket const& packet);
    void guest_connect(VsockHeader const& header);
    void guest_packet(Key key, Connection& connection, VsockPacket const& packet);
    // Queues a control packet of a live connection; one already waiting of that kind stands for both.
    void send_control(Key key, Connection& connection, ControlBit control);
    void send_reset(Key key);
    // The next control packet to go out (resets first), taken off its queue; m_control or m_resets
    // must not be empty.
    Control take_control();
    void close(Key key, bool send_reset);
    void flush(Key key, Connection& connection);
    void finish_if_done(Key key, Connection& connection);
    void make_ready(Key key, Connection& connection);
    void accept_host_connections();
    void read_connect_line(u64 token);
    void socket_event(u64 token, u32 events);
    // The next connection whose host bytes may go to the guest now, or nullptr.
    Connection* next_readable(Key& key);
    VsockHeader header_for(Key key, u16 op, u32 flags, u32 length);
    u32 allocate_host_port() const;

    VsockOptions m_options;
    Fd m_listener;
    HostEvents m_events;
    EventFd m_wakeup;
    std::map<Key, Connection> m_connections;
    std::unordered_map<u64, Key> m_tokens;
    std::map<u64, PendingHost> m_pending;
    std::deque<Key> m_resets;        // RSTs for the rx queue, sent before anything else
    std::deque<Key> m_control;       // live connections with control packets, sent before any data
    std::deque<Key> m_readable;      // connections with host bytes for the guest, in turn
    VsockStats m_stats;
    std::optional<DescriptorChain> m_chain; // an rx chain popped but not filled yet
    u64 m_next_token;
    mutable u32 m_next_host_port { FIRST_HOST_PORT };
};

} // namespace kasou::virtio::vsock
