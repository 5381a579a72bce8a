#include "virtio/net/net_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/sys_file.h"
#include "base/try.h"
#include "virtio/io_vectors.h"
#include "virtio/net/net_header.h"

namespace kasou::virtio::net {

namespace {

// struct virtio_net_config (virtio 1.2, 5.1.4).
constexpr u64 CONFIG_MAC = 0;
constexpr u64 CONFIG_STATUS = 6;
constexpr u64 CONFIG_MAX_VIRTQUEUE_PAIRS = 8;
constexpr u64 CONFIG_SIZE = 10;
constexpr u16 STATUS_LINK_UP = 1;
constexpr u64 WARNING_LIMIT = 10;

// The tap offloads that match the receive features the driver accepted.
unsigned tap_offloads(u64 features)
{
    if (!(features & F_GUEST_CSUM))
        return 0;
    unsigned offloads = TAP_OFFLOAD_CSUM;
    if (features & F_GUEST_TSO4)
        offloads |= TAP_OFFLOAD_TSO4;
    if (features & F_GUEST_TSO6)
        offloads |= TAP_OFFLOAD_TSO6;
    if ((features & F_GUEST_ECN) && (offloads & (TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6)))
        offloads |= TAP_OFFLOAD_TSO_ECN;
    return offloads;
}

} // namespace

ErrorOr<std::shared_ptr<NetDevice>> NetDevice::create(NetOptions options)
{
    if (options.queue_size == 0 || options.queue_size > SplitQueue::MAX_SIZE || (options.queue_size & (options.queue_size - 1)))
        return make_error(fmt::format("virtio-net queue size {} is not a power of two from 1 to {}", options.queue_size, SplitQueue::MAX_SIZE));
    auto tap = TRY(options.tap_fd.valid() ? Tap::adopt(std::move(options.tap_fd)) : Tap::open(options.tap_name));
    TRY(tap.set_offload(0));
    auto events = TRY(HostEvents::create());
    TRY(events.add(tap.fd(), EPOLLIN, 0));
    MacAddress mac = options.mac.value_or(random_mac());
    return std::shared_ptr<NetDevice>(new NetDevice(std::move(tap), std::move(events), mac, options.queue_size));
}

NetDevice::NetDevice(Tap tap, HostEvents events, MacAddress mac, u16 queue_size)
    : m_tap(std::move(tap))
    , m_events(std::move(events))
    , m_mac(mac)
    , m_queue_size(queue_size)
    , m_frame(MAX_PACKET_BYTES)
{
}

u64 NetDevice::device_features() const
{
    return F_CSUM | F_GUEST_CSUM | F_MAC | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_ECN | F_HOST_TSO4 | F_HOST_TSO6 | F_HOST_ECN | F_MRG_RXBUF
        | F_STATUS;
}

void NetDevice::read_config(u64 offset, std::span<u8> data)
{
    u8 config[CONFIG_SIZE] = {};
    std::memcpy(config + CONFIG_MAC, m_mac.data(), m_mac.size());
    u16 status = STATUS_LINK_UP;
    u16 pairs = 1;
    std::memcpy(config + CONFIG_STATUS, &status, 2);
    std::memcpy(config + CONFIG_MAX_VIRTQUEUE_PAIRS, &pairs, 2);
    copy_config(config, offset, data);
}

void NetDevice::activate(u64 features)
{
    m_features = features;
    if (auto set = m_tap.set_offload(tap_offloads(features)); !set)
        spdlog::warn("virtio-net {}: {}; the guest receives frames without offloads", m_tap.name(), set.error().to_string());
}

void NetDevice::reset()
{
    m_features = 0;
    m_chains.clear(); // they belonged to the queue the driver just dropped
    m_frame_bytes = 0;
    m_tap_readable = true;
    (void)m_tap.set_offload(0);
}

ErrorOr<void> NetDevice::process(u16 index, SplitQueue& queue)
{
    return index == RECEIVEQ ? receive(queue) : transmit(queue);
}

ErrorOr<void> NetDevice::process_host_events(std::span<SplitQueue* const> queues)
{
    if (!TRY(m_events.take()).empty())
        m_tap_readable = true;
    if (queues.size() > RECEIVEQ && queues[RECEIVEQ])
        TRY(receive(*queues[RECEIVEQ]));
    return {};
}

ErrorOr<void> NetDevice::transmit(SplitQueue& queue)
{
    while (auto chain = TRY(queue.pop())) {
        auto packet = TRY(TransmitPacket::parse(*chain, m_features));
        auto vectors = io_vectors(packet.buffers, 0, MAX_PACKET_BYTES);
        if (auto written = sys::writev(m_tap.fd(), vectors.data(), vectors.size()); written) {
            ++m_stats.tx_frames;
        } else if (m_stats.tx_dropped++ < WARNING_LIMIT) {
            spdlog::warn("virtio-net {}: frame dropped: {}", m_tap.name(), written.error().to_string());
        }
        TRY(queue.push(chain->head, 0));
    }
    return {};
}

bool NetDevice::read_frame()
{
    while (m_tap_readable) {
        auto n = sys::read(m_tap.fd(), m_frame.data(), m_frame.size());
        if (!n) {
            if (n.error().code() != EAGAIN)
                spdlog::warn("virtio-net {}: {}", m_tap.name(), n.error().to_string());
            m_tap_readable = false;
            return false;
        }
        if (*n > HEADER_BYTES) {
            m_frame_bytes = *n;
            return true;
        }
    }
    return false;
}

ErrorOr<void> NetDevice::receive(SplitQueue& queue)
{
    bool mergeable = m_features & F_MRG_RXBUF;
    while (m_frame_bytes > 0 || read_frame()) {
        // Chains for this frame: one without MRG_RXBUF, as many as it takes with it (5.1.6.3.2).
        u64 room = 0;
        for (auto const& chain : m_chains)
            room += chain.writable_bytes();
        while (room < m_frame_bytes && (mergeable || m_chains.empty()) && m_chains.size() < queue.size()) {
            auto chain = TRY(pop_or_request_notification(queue));
            if (!chain)
                return {}; // the frame waits, the tap is not read, until the driver adds buffers
            TRY(check_receive_chain(*chain));
            room += chain->writable_bytes();
            m_chains.push_back(std::move(*chain));
        }
        if (room < m_frame_bytes) {
            // The buffers stay for the next frame.
            if (m_stats.rx_dropped++ < WARNING_LIMIT)
                spdlog::warn("virtio-net {}: {}-byte frame dropped: the receive buffers hold {} bytes", m_tap.name(), m_frame_bytes, room);
            m_frame_bytes = 0;
            continue;
        }
        TRY(deliver_frame(queue));
    }
    return {};
}

ErrorOr<void> NetDevice::deliver_frame(SplitQueue& queue)
{
    // The fewest leading chains that hold the frame: the header says how many (5.1.6.4).
    size_t count = 0;
    for (u64 room = 0; room < m_frame_bytes; ++count)
        room += m_chains[count].writable_bytes();
    NetHeader header;
    std::memcpy(&header, m_frame.data(), HEADER_BYTES);
    header.num_buffers = static_cast<u16>(count);
    if (!(m_features & F_GUEST_CSUM))
        header.flags = 0; // 5.1.6.4.1: no checksum state for a driver that did not ask
    std::memcpy(m_frame.data(), &header, HEADER_BYTES);
    std::vector<SplitQueue::UsedElement> used;
    u64 offset = 0;
    for (size_t i = 0; i < count; ++i) {
        u64 part = std::min(m_chains[i].writable_bytes(), m_frame_bytes - offset);
        m_chains[i].write(0, std::span(m_frame.data() + offset, part));
        used.push_back({ m_chains[i].head, static_cast<u32>(part) });
        offset += part;
    }
    m_chains.erase(m_chains.begin(), m_chains.begin() + static_cast<std::ptrdiff_t>(count));
    m_frame_bytes = 0;
    ++m_stats.rx_frames;
    return queue.push_many(used);
}

} // namespace kasou::virtio::net
