#include "vhost_user/blk_backend.h"

#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::vhost_user {

namespace {

// Ring sizes in bytes (virtio 1.2, 2.7): 16 per descriptor; the available and used rings with
// their flags, index and event field.
u64 descriptor_bytes(u16 size) { return 16ull * size; }
u64 available_bytes(u16 size) { return 6 + 2ull * size; }
u64 used_bytes(u16 size) { return 6 + 8ull * size; }

template<class T>
std::vector<u8> bytes_of(T const& value)
{
    std::vector<u8> bytes(sizeof(T));
    std::memcpy(bytes.data(), &value, sizeof(T));
    return bytes;
}

} // namespace

ErrorOr<std::unique_ptr<BlkBackend>> BlkBackend::create(std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options)
{
    if (options.queues == 0 || options.queues > 256)
        return make_error(fmt::format("vhost-user-blk: {} queues, expected 1 to 256", options.queues));
    auto stop = TRY(EventFd::create());
    auto gate = TRY(virtio::PauseGate::create());
    return std::unique_ptr<BlkBackend>(new BlkBackend(std::move(disk), std::move(options), std::move(stop), std::move(gate)));
}

BlkBackend::BlkBackend(std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options, EventFd stop, std::unique_ptr<virtio::PauseGate> gate)
    : m_disk(disk)
    , m_options(options)
    , m_device(std::move(disk),
          virtio::blk::BlkOptions { .read_only = options.read_only, .serial = options.serial, .queues = options.queues, .queue_size = options.max_queue_size })
    , m_rings(options.queues)
    , m_stop(std::move(stop))
    , m_gate(std::move(gate))
{
}

BlkBackend::~BlkBackend() { stop_io(); }

u64 BlkBackend::features() const
{
    return m_device.device_features() | virtio::F_VERSION_1 | virtio::F_RING_INDIRECT_DESC | virtio::F_RING_EVENT_IDX | F_PROTOCOL_FEATURES;
}

ErrorOr<BlkBackend::Ring*> BlkBackend::ring(u32 index)
{
    if (index >= m_rings.size())
        return make_error(fmt::format("vhost-user-blk: ring {} does not exist ({} queues)", index, m_rings.size()));
    return &m_rings[index];
}

bool BlkBackend::ready(Ring const& ring) const
{
    // Without protocol features a ring is enabled from the start; with them, once the front-end
    // says so (SET_VRING_ENABLE).
    bool enabled = ring.enabled || !(m_features & F_PROTOCOL_FEATURES);
    return m_memory && ring.kick.valid() && ring.address && ring.size != 0 && enabled;
}

void BlkBackend::stop_io()
{
    if (!m_io.joinable())
        return;
    (void)m_stop.signal();
    m_io.join();
    (void)m_stop.consume();
    for (auto& queue : m_service->take_queues())
        m_rings[queue.index].base = queue.queue.popped();
    m_service.reset();
}

ErrorOr<void> BlkBackend::start_io()
{
    std::vector<virtio::QueueService::Queue> queues;
    bool event_index = m_features & virtio::F_RING_EVENT_IDX;
    for (u16 index = 0; index < m_rings.size(); ++index) {
        auto& ring = m_rings[index];
        if (!ready(ring))
            continue;
        auto where = [&](Error const& error) { return error.with_prefix(fmt::format("vhost-user-blk ring {}", index)); };
        virtio::QueueLayout layout {
            .size = ring.size,
            .descriptor_table = TRY(m_memory->guest_physical(ring.address->descriptor, descriptor_bytes(ring.size)).map_error(where)),
            .available_ring = TRY(m_memory->guest_physical(ring.address->available, available_bytes(ring.size)).map_error(where)),
            .used_ring = TRY(m_memory->guest_physical(ring.address->used, used_bytes(ring.size)).map_error(where)),
        };
        auto queue = TRY(virtio::SplitQueue::create(m_memory->guest(), layout, event_index).map_error(where));
        queue.resume(ring.base);
        queues.push_back(virtio::QueueService::Queue { .index = index, .queue = std::move(queue), .vector = index, .notify_fd = ring.kick.get() });
    }
    if (queues.empty())
        return {};
    // The interrupt callback runs on the I/O thread; the rings' call descriptors change only while
    // that thread is stopped.
    auto interrupt = [this](u16 vector) {
        auto const& call = m_rings[vector].call;
        if (call.valid()) {
            u64 one = 1;
            (void)sys::write(call.get(), &one, sizeof(one));
        }
    };
    m_service = std::make_unique<virtio::QueueService>(m_device, std::move(queues), m_stop.fd(), *m_gate, interrupt, m_options.io_poll);
    m_gate->started();
    m_io = std::thread([this] {
        auto served = m_service->run();
        if (!served) {
            // A ring the front-end (or its guest) broke: say so on the ring's error descriptor if
            // it gave one, and stop serving until the front-end sets the rings up again.
            spdlog::warn("vhost-user-blk: {}", served.error().to_string());
            for (auto const& ring : m_rings) {
                if (ring.err.valid()) {
                    u64 one = 1;
                    (void)sys::write(ring.err.get(), &one, sizeof(one));
                }
            }
        }
        m_gate->ended();
    });
    return {};
}

void BlkBackend::reset()
{
    stop_io();
    m_features = 0;
    m_protocol_features = 0;
    m_memory.reset();
    m_rings = std::vector<Ring>(m_options.queues);
    m_device.reset();
}

ErrorOr<std::optional<std::vector<u8>>> BlkBackend::handle(Message message)
{
    using Reply = std::optional<std::vector<u8>>;
    switch (message.request) {
    case Request::GET_FEATURES:
        return Reply(bytes_of(features()));
    case Request::GET_PROTOCOL_FEATURES:
        return Reply(bytes_of(PROTOCOL_FEATURES));
    case Request::GET_QUEUE_NUM:
        return Reply(bytes_of(u64 { m_options.queues }));
    case Request::GET_CONFIG: {
        if (!(m_protocol_features & PROTOCOL_F_CONFIG))
            return make_error("vhost-user-blk: GET_CONFIG without the CONFIG protocol feature");
        auto const& range = std::get<ConfigRange>(message.body);
        std::vector<u8> reply(sizeof(ConfigHeader) + range.size);
        ConfigHeader header { .offset = range.offset, .size = range.size, .flags = range.flags };
        std::memcpy(reply.data(), &header, sizeof(header));
        m_device.read_config(range.offset, std::span(reply).subspan(sizeof(header)));
        return Reply(std::move(reply));
    }
    case Request::GET_VRING_BASE: {
        // Stops the ring (vhost-user.rst, "Starting and stopping rings") and gives back where the
        // front-end should go on from: every chain taken has been answered.
        auto state = std::get<VringState>(message.body);
        auto* target = TRY(ring(state.index));
        stop_io();
        target->kick = Fd();
        VringState reply { .index = state.index, .num = target->base };
        TRY(start_io());
        return Reply(bytes_of(reply));
    }
    default:
        break;
    }
    stop_io();
    auto applied = apply(message);
    if (!applied) {
        reset();
        return tl::unexpected(applied.error());
    }
    TRY(start_io());
    return Reply {};
}

ErrorOr<void> BlkBackend::apply(Message& message)
{
    switch (message.request) {
    case Request::SET_OWNER:
        return {};
    case Request::RESET_OWNER:
    case Request::RESET_DEVICE:
        reset();
        return {};
    case Request::SET_FEATURES: {
        u64 wanted = std::get<u64>(message.body);
        if (wanted & ~features())
            return make_error(fmt::format("vhost-user-blk: SET_FEATURES {:#x} asks for features not offered ({:#x})", wanted, wanted & ~features()));
        m_features = wanted;
        m_device.activate(wanted);
        return {};
    }
    case Request::SET_PROTOCOL_FEATURES: {
        u64 wanted = std::get<u64>(message.body);
        if (wanted & ~PROTOCOL_FEATURES)
            return make_error(fmt::format("vhost-user-blk: SET_PROTOCOL_FEATURES {:#x} asks for protocol features not offered", wanted));
        m_protocol_features = wanted;
        return {};
    }
    case Request::SET_MEM_TABLE: {
        auto& table = std::get<MemoryTable>(message.body);
        m_memory.reset(); // the old mapping goes before the new one is made: at most one at a time
        m_memory = std::make_unique<FrontendMemory>(TRY(FrontendMemory::map(table.regions, table.fds)));
        return {};
    }
    case Request::SET_VRING_NUM: {
        auto state = std::get<VringState>(message.body);
        auto* target = TRY(ring(state.index));
        if (state.num == 0 || state.num > m_options.max_queue_size || (state.num & (state.num - 1)) != 0)
            return make_error(fmt::format("vhost-user-blk: ring {} size {} is not a power of two from 1 to {}", state.index, state.num, m_options.max_queue_size));
        target->size = static_cast<u16>(state.num);
        return {};
    }
    case Request::SET_VRING_BASE: {
        auto state = std::get<VringState>(message.body);
        auto* target = TRY(ring(state.index));
        if (state.num > 0xFFFF)
            return make_error(fmt::format("vhost-user-blk: ring {} base {} is not a 16-bit index", state.index, state.num));
        target->base = static_cast<u16>(state.num);
        return {};
    }
    case Request::SET_VRING_ADDR: {
        auto address = std::get<VringAddress>(message.body);
        auto* target = TRY(ring(address.index));
        if (address.flags & VRING_F_LOG)
            return make_error("vhost-user-blk: SET_VRING_ADDR asks for used-ring logging, which is not offered");
        target->address = address;
        return {};
    }
    case Request::SET_VRING_KICK:
    case Request::SET_VRING_CALL:
    case Request::SET_VRING_ERR: {
        auto& ring_fd = std::get<VringFd>(message.body);
        auto* target = TRY(ring(ring_fd.index));
        if (message.request == Request::SET_VRING_KICK) {
            if (!ring_fd.fd.valid())
                return make_error(fmt::format("vhost-user-blk: ring {} without a kick descriptor (polled rings are not supported)", ring_fd.index));
            target->kick = std::move(ring_fd.fd);
        } else if (message.request == Request::SET_VRING_CALL) {
            target->call = std::move(ring_fd.fd);
        } else {
            target->err = std::move(ring_fd.fd);
        }
        return {};
    }
    case Request::SET_VRING_ENABLE: {
        auto state = std::get<VringState>(message.body);
        auto* target = TRY(ring(state.index));
        if (state.num > 1)
            return make_error(fmt::format("vhost-user-blk: SET_VRING_ENABLE {} for ring {}, expected 0 or 1", state.num, state.index));
        if (!(m_features & F_PROTOCOL_FEATURES))
            return make_error("vhost-user-blk: SET_VRING_ENABLE without protocol features negotiated");
        target->enabled = state.num == 1;
        return {};
    }
    case Request::SET_CONFIG:
        if (!(m_protocol_features & PROTOCOL_F_CONFIG))
            return make_error("vhost-user-blk: SET_CONFIG without the CONFIG protocol feature");
        return {}; // nothing in virtio-blk's configuration space is writable without CONFIG_WCE
    default:
        return make_error(fmt::format("vhost-user-blk: {} is not supported", request_name(static_cast<u32>(message.request))));
    }
}

} // namespace kasou::vhost_user
