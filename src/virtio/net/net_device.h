#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "virtio/host_events.h"
#include "virtio/net/mac_address.h"
#include "virtio/net/tap.h"
#include "virtio/virtio_device.h"

namespace kasou::virtio::net {

constexpr u16 RECEIVEQ = 0;
constexpr u16 TRANSMITQ = 1;

struct NetOptions {
    std::string tap_name {};         // created if missing (kasou then needs CAP_NET_ADMIN)
    std::optional<MacAddress> mac {}; // the guest's address; a random local one when absent
    u16 queue_size { 256 };
    Fd tap_fd {};                    // instead of tap_name: a tap queue opened elsewhere (Tap::adopt)
};

// What the device has moved, for logs and tests. Written by the I/O thread only.
struct NetStats {
    u64 rx_frames { 0 };
    u64 tx_frames { 0 };
    u64 rx_dropped { 0 }; // did not fit the driver's receive buffer
    u64 tx_dropped { 0 }; // refused by the tap
};

// virtio-net (virtio 1.2, 5.1) over a tap interface, with the back-end in userspace: one receiveq
// and one transmitq, the MAC in the config space, link always up (STATUS), checksum and TSO
// offloads both ways. Transmit chains are validated (TransmitPacket::parse) and written to the tap
// as they are, header included. Frames from the tap wait in one host buffer until the driver offers
// a receive chain; while it offers none the tap is not read, and its readiness (edge-triggered)
// stays consumed, so the I/O thread sleeps until the driver adds buffers. With MRG_RXBUF a frame
// is spread over as many receive chains as it needs, returned to the driver together; without it
// (then, with GUEST_TSO, the driver gives 64 KiB buffers as 5.1.6.3.1 asks) a frame that does not
// fit the buffer it meets is dropped and counted, and the buffer kept for the next frame.
//
// kasou wires it as `--net tap=NAME[,mac=M]`: NetDevice::create({ NAME, parse_mac(M) }); a
// descriptor handed over by a management process goes in NetOptions::tap_fd instead.
class NetDevice final : public VirtioDevice {
public:
    static ErrorOr<std::shared_ptr<NetDevice>> create(NetOptions options);

    u16 device_type() const override { return DEVICE_NET; }
    u64 device_features() const override;
    u16 queue_count() const override { return 2; }
    u16 queue_max_size() const override { return m_queue_size; }
    void read_config(u64 offset, std::span<u8> data) override;
    void activate(u64 features) override;
    ErrorOr<void> process(u16 index, SplitQueue& queue) override;
    void reset() override;
    int host_event_fd() const override { return m_events.fd(); }
    ErrorOr<void> process_host_events(std::span<SplitQueue* const> queues) override;

    std::string const& tap_name() const { return m_tap.name(); }
    MacAddress const& mac() const { return m_mac; }
    NetStats const& stats() const { return m_stats; }

private:
    NetDevice(Tap tap, HostEvents events, MacAddress mac, u16 queue_size);

    ErrorOr<void> receive(SplitQueue& queue);
    // Writes the frame into the leading chains of m_chains that hold it and returns them.
    ErrorOr<void> deliver_frame(SplitQueue& queue);
    ErrorOr<void> transmit(SplitQueue& queue);
    // Reads the next frame into m_frame; false when the tap has none.
    bool read_frame();

    Tap m_tap;
    HostEvents m_events;
    MacAddress m_mac;
    u16 m_queue_size;
    u64 m_features { 0 };
    bool m_tap_readable { true };          // no EAGAIN since the last edge
    std::vector<u8> m_frame;               // header and frame read from the tap
    u64 m_frame_bytes { 0 };               // 0: m_frame holds nothing
    std::vector<DescriptorChain> m_chains;  // receive chains popped but not filled yet, in order
    NetStats m_stats;
};

} // namespace kasou::virtio::net
