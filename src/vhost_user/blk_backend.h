#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/fd.h"
#include "storage/block_device.h"
#include "vhost_user/frontend_memory.h"
#include "vhost_user/message.h"
#include "virtio/blk/blk_device.h"
#include "virtio/pause_gate.h"
#include "virtio/queue_service.h"

namespace kasou::vhost_user {

struct BlkBackendOptions {
    u16 queues { 4 };              // request queues offered (GET_QUEUE_NUM, num_queues in the config)
    u16 max_queue_size { 1024 };   // the largest SET_VRING_NUM accepted
    std::string serial;            // GET_ID answer
    bool read_only { false };
    std::chrono::nanoseconds io_poll { virtio::AdaptivePoll::DEFAULT_MAXIMUM };
};

// The back-end side of one vhost-user-blk connection: the protocol's state (features, the memory
// table, each ring's size, addresses, position and eventfds) and the I/O thread that serves the
// rings. Requests are carried out by kasou's own virtio-blk device model (BlkDevice) on a
// QueueService, exactly as for a VM's disk, over the front-end's shared memory instead of guest RAM.
//
// The front-end is untrusted: every index is checked against the queue count, every ring size
// against max_queue_size, every ring address against the memory table (translated, then checked by
// SplitQueue as any guest's ring), and features against those offered. handle() returns an error
// for anything out of line; the caller then closes the connection, and nothing of this object is
// left running.
//
// Threads: handle() runs on the connection's thread; a message that changes rings or memory first
// stops the I/O thread (so it never sees a half-changed ring or unmapped memory), then starts it
// again over the rings that are ready (kicked, addressed, and enabled once protocol features are in
// use). A ring's position survives the stop (the I/O thread completes what it takes).
class BlkBackend {
public:
    static ErrorOr<std::unique_ptr<BlkBackend>> create(std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options);
    ~BlkBackend();
    BlkBackend(BlkBackend const&) = delete;
    BlkBackend& operator=(BlkBackend const&) = delete;

    // Carries out one request; the reply's payload for the requests that have one (GET_*), an
    // empty optional for those that do not.
    ErrorOr<std::optional<std::vector<u8>>> handle(Message message);
    // Whether the front-end negotiated REPLY_ACK (so need_reply asks for an acknowledgement).
    bool reply_ack() const { return m_protocol_features & PROTOCOL_F_REPLY_ACK; }

    // The virtio features and protocol features offered.
    u64 features() const;
    static constexpr u64 PROTOCOL_FEATURES = PROTOCOL_F_MQ | PROTOCOL_F_REPLY_ACK | PROTOCOL_F_CONFIG | PROTOCOL_F_RESET_DEVICE;

private:
    struct Ring {
        u16 size { 0 };
        std::optional<VringAddress> address;
        u16 base { 0 };
        Fd kick;
        Fd call;
        Fd err;
        bool enabled { false };
    };

    BlkBackend(std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options, EventFd stop, std::unique_ptr<virtio::PauseGate> gate);

    ErrorOr<Ring*> ring(u32 index);
    ErrorOr<void> apply(Message& message);
    bool ready(Ring const& ring) const;
    // Stops the I/O thread (if it runs) and keeps each served ring's position.
    void stop_io();
    // Starts the I/O thread over the rings that are ready, if any.
    ErrorOr<void> start_io();
    void reset();

    std::shared_ptr<storage::BlockDevice> m_disk;
    BlkBackendOptions m_options;
    virtio::blk::BlkDevice m_device;
    u64 m_features { 0 };
    u64 m_protocol_features { 0 };
    std::unique_ptr<FrontendMemory> m_memory;
    std::vector<Ring> m_rings;

    EventFd m_stop;
    std::unique_ptr<virtio::PauseGate> m_gate;
    std::unique_ptr<virtio::QueueService> m_service;
    std::thread m_io;
};

} // namespace kasou::vhost_user
