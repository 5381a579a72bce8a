#include "virtio/pci_transport.h"

#include <algorithm>
#include <cstring>
#include <pthread.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/try.h"

namespace kasou::virtio {

namespace {

// virtio 1.2, 4.1.4.3: struct virtio_pci_common_cfg.
constexpr u64 DEVICE_FEATURE_SELECT = 0x00;
constexpr u64 DEVICE_FEATURE = 0x04;
constexpr u64 DRIVER_FEATURE_SELECT = 0x08;
constexpr u64 DRIVER_FEATURE = 0x0C;
constexpr u64 CONFIG_MSIX_VECTOR = 0x10;
constexpr u64 NUM_QUEUES = 0x12;
constexpr u64 DEVICE_STATUS = 0x14;
constexpr u64 CONFIG_GENERATION = 0x15;
constexpr u64 QUEUE_SELECT = 0x16;
constexpr u64 QUEUE_SIZE = 0x18;
constexpr u64 QUEUE_MSIX_VECTOR = 0x1A;
constexpr u64 QUEUE_ENABLE = 0x1C;
constexpr u64 QUEUE_NOTIFY_OFF = 0x1E;
constexpr u64 QUEUE_DESC = 0x20;
constexpr u64 QUEUE_DRIVER = 0x28;
constexpr u64 QUEUE_DEVICE = 0x30;
constexpr u64 COMMON_LENGTH = 0x38;

// 4.1.4: capability types.
constexpr u8 CAP_COMMON = 1;
constexpr u8 CAP_NOTIFY = 2;
constexpr u8 CAP_ISR = 3;
constexpr u8 CAP_DEVICE = 4;
constexpr u8 PCI_CAP_VENDOR = 0x09;
constexpr u8 ISR_QUEUE = 1;
constexpr u8 ISR_CONFIG = 2;
constexpr u16 MSIX_ENABLE = 1u << 15;
constexpr u16 MSIX_FUNCTION_MASK = 1u << 14;

// The bits a driver sets during initialization, in the order it must set them (virtio 1.2, 3.1.1).
constexpr u8 INITIALIZATION_ORDER[] = { PciTransport::STATUS_ACKNOWLEDGE, PciTransport::STATUS_DRIVER, PciTransport::STATUS_FEATURES_OK,
    PciTransport::STATUS_DRIVER_OK };

// Whether each initialization bit set in `status` comes with every bit before it.
bool in_initialization_order(u8 status)
{
    bool previous_set = true;
    for (u8 bit : INITIALIZATION_ORDER) {
        bool set = status & bit;
        if (set && !previous_set)
            return false;
        previous_set = set;
    }
    return true;
}

u32 load(std::span<u8 const> data)
{
    u32 value = 0;
    std::memcpy(&value, data.data(), std::min<size_t>(data.size(), 4));
    return value;
}

void store(std::span<u8> data, u64 value)
{
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = i < 8 ? static_cast<u8>(value >> (8 * i)) : 0;
}

// PCI class for each device type, as QEMU presents them, so guests that look at classes agree.
pci::PciIdentity identity_for(u16 type)
{
    pci::PciIdentity identity { 0x1af4, static_cast<u16>(0x1040 + type), 1, 0x00, 0x00, 0, 0x1af4, static_cast<u16>(0x40 + type) };
    switch (type) {
    case DEVICE_BLOCK:
        identity.class_code = 0x01;
        break;
    case DEVICE_NET:
        identity.class_code = 0x02;
        break;
    case DEVICE_CONSOLE:
        identity.class_code = 0x07;
        identity.subclass = 0x80;
        break;
    default:
        identity.class_code = 0x00; // "other" (0x00ff), as QEMU presents virtio-rng and vsock
        identity.subclass = 0xFF;
        break;
    }
    return identity;
}

void add_virtio_capability(pci::ConfigSpace& config, u8 type, u64 offset, u32 length, std::optional<u32> multiplier = std::nullopt)
{
    std::vector<u8> body = { static_cast<u8>(multiplier ? 20 : 16), type, 0, 0, 0, 0 };
    for (u32 value : { static_cast<u32>(offset), length })
        for (int i = 0; i < 4; ++i)
            body.push_back(static_cast<u8>(value >> (8 * i)));
    if (multiplier)
        for (int i = 0; i < 4; ++i)
            body.push_back(static_cast<u8>(*multiplier >> (8 * i)));
    config.add_capability(PCI_CAP_VENDOR, body);
}

} // namespace

ErrorOr<std::unique_ptr<PciTransport>> PciTransport::create(memory::GuestMemory const& memory, std::shared_ptr<VirtioDevice> device,
    pci::MsiSink& sink, NotifyRouter* router, std::chrono::nanoseconds io_poll)
{
    u16 count = device->queue_count();
    if (count == 0 || count > 64)
        return make_error(ErrorKind::Internal, fmt::format("virtio device type {} asks for {} queues (1 to 64 supported)", device->device_type(), count));
    std::vector<Queue> queues;
    for (u16 i = 0; i < count; ++i)
        queues.push_back(Queue { TRY(EventFd::create()), device->queue_max_size() });
    return std::unique_ptr<PciTransport>(
        new PciTransport(memory, std::move(device), sink, router, io_poll, std::move(queues), TRY(PauseGate::create())));
}

PciTransport::PciTransport(memory::GuestMemory const& memory, std::shared_ptr<VirtioDevice> device, pci::MsiSink& sink, NotifyRouter* router,
    std::chrono::nanoseconds io_poll, std::vector<Queue> queues, std::unique_ptr<PauseGate> pause_gate)
    : m_memory(memory)
    , m_device(std::move(device))
    , m_config(identity_for(m_device->device_type()))
    , m_msix(static_cast<u16>(queues.size() + 1), sink)
    , m_queues(std::move(queues))
    , m_router(router)
    , m_io_poll(io_poll)
    , m_pause_gate(std::move(pause_gate))
{
    m_config.set_memory_bar(0, BAR_SIZE, 0, true);
    add_virtio_capability(m_config, CAP_COMMON, COMMON_OFFSET, COMMON_LENGTH);
    add_virtio_capability(m_config, CAP_ISR, ISR_OFFSET, 4);
    add_virtio_capability(m_config, CAP_DEVICE, DEVICE_OFFSET, 0x1000);
    add_virtio_capability(m_config, CAP_NOTIFY, NOTIFY_OFFSET, static_cast<u32>(m_queues.size() * NOTIFY_MULTIPLIER), NOTIFY_MULTIPLIER);
    // MSI-X capability (PCI 3.0, 6.8.2.1): message control, table offset/BIR, PBA offset/BIR.
    u16 control = static_cast<u16>(m_msix.vectors() - 1);
    u32 table = static_cast<u32>(MSIX_TABLE_OFFSET);
    u32 pba = static_cast<u32>(MSIX_PBA_OFFSET);
    u8 const body[10] = { static_cast<u8>(control), static_cast<u8>(control >> 8), static_cast<u8>(table), static_cast<u8>(table >> 8),
        static_cast<u8>(table >> 16), static_cast<u8>(table >> 24), static_cast<u8>(pba), static_cast<u8>(pba >> 8),
        static_cast<u8>(pba >> 16), static_cast<u8>(pba >> 24) };
    u8 const writable[10] = { 0, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0 };
    m_msix_capability = m_config.add_capability(pci::MsixTable::CAPABILITY_ID, body, writable);
}

PciTransport::~PciTransport()
{
    stop();
}

u8 PciTransport::status() const
{
    return m_status.load();
}

u64 PciTransport::offered_features() const
{
    return m_device->device_features() | F_VERSION_1 | F_RING_INDIRECT_DESC | F_RING_EVENT_IDX;
}

void PciTransport::config_written(u16 offset, u8 size)
{
    u16 control_offset = static_cast<u16>(m_msix_capability + 2);
    if (offset <= control_offset + 1 && offset + size > control_offset) {
        u16 control = static_cast<u16>(m_config.read(control_offset, 2));
        m_msix.set_control(control & MSIX_ENABLE, control & MSIX_FUNCTION_MASK);
    }
    route_notifications();
}

void PciTransport::route_notifications()
{
    if (!m_router)
        return;
    u64 bar = m_config.bar_address(0);
    std::optional<u64> wanted;
    if (m_config.memory_enabled() && bar != 0)
        wanted = bar;
    if (wanted == m_routed_base)
        return;
    for (u16 index = 0; index < queue_count(); ++index) {
        int fd = m_queues[index].notify.fd();
        if (m_routed_base) {
            auto removed = m_router->unroute(*m_routed_base + notify_offset(index), fd);
            if (!removed && !m_route_failure_reported.exchange(true))
                spdlog::warn("virtio: cannot remove the notification route of queue {}: {}", index, removed.error().to_string());
        }
        if (wanted) {
            // Logged once: where the guest puts its BAR is the guest's choice, and so is how often.
            auto added = m_router->route(*wanted + notify_offset(index), fd);
            if (!added && !m_route_failure_reported.exchange(true))
                spdlog::warn("virtio: queue {}'s notifications at {:#x} will exit to userspace: {}", index, *wanted + notify_offset(index), added.error().to_string());
        }
    }
    m_routed_base = wanted;
}

void PciTransport::bar_read(u8 bar, u64 offset, std::span<u8> data)
{
    std::fill(data.begin(), data.end(), 0);
    if (bar != 0)
        return;
    if (offset >= COMMON_OFFSET && offset < COMMON_OFFSET + COMMON_LENGTH) {
        std::lock_guard guard(m_lock);
        store(data, common_read(offset - COMMON_OFFSET, data.size()));
    } else if (offset >= ISR_OFFSET && offset < ISR_OFFSET + 4) {
        store(data, m_isr.exchange(0)); // reading the ISR clears it (4.1.4.5)
    } else if (offset >= DEVICE_OFFSET && offset < DEVICE_OFFSET + 0x1000) {
        m_device->read_config(offset - DEVICE_OFFSET, data);
    } else if (offset >= MSIX_TABLE_OFFSET && offset < MSIX_PBA_OFFSET) {
        m_msix.table_read(offset - MSIX_TABLE_OFFSET, data);
    } else if (offset >= MSIX_PBA_OFFSET && offset < BAR_SIZE) {
        m_msix.pba_read(offset - MSIX_PBA_OFFSET, data);
    }
}

void PciTransport::bar_write(u8 bar, u64 offset, std::span<u8 const> data)
{
    if (bar != 0 || data.empty())
        return;
    if (offset >= COMMON_OFFSET && offset < COMMON_OFFSET + COMMON_LENGTH) {
        std::lock_guard guard(m_lock);
        common_write(offset - COMMON_OFFSET, data.size(), load(data));
    } else if (offset >= DEVICE_OFFSET && offset < DEVICE_OFFSET + 0x1000) {
        m_device->write_config(offset - DEVICE_OFFSET, data);
    } else if (offset >= NOTIFY_OFFSET && offset < NOTIFY_OFFSET + m_queues.size() * NOTIFY_MULTIPLIER) {
        // Reached only when the notification did not go through a KVM ioeventfd.
        if (!m_userspace_notify_reported.exchange(true))
            spdlog::debug("virtio-{}: a queue notification took a userspace exit (no ioeventfd route at this address)",
                device_type_name(m_device->device_type()));
        (void)m_queues[(offset - NOTIFY_OFFSET) / NOTIFY_MULTIPLIER].notify.signal();
    } else if (offset >= MSIX_TABLE_OFFSET && offset < MSIX_PBA_OFFSET) {
        m_msix.table_write(offset - MSIX_TABLE_OFFSET, data);
    }
}

u32 PciTransport::common_read(u64 offset, size_t size)
{
    Queue* queue = m_queue_select < m_queues.size() ? &m_queues[m_queue_select] : nullptr;
    auto half = [&](u64 field, u64 value) -> u32 { return offset == field ? static_cast<u32>(value) : static_cast<u32>(value >> 32); };
    switch (offset) {
    case DEVICE_FEATURE_SELECT:
        return m_device_feature_select;
    case DEVICE_FEATURE:
        return m_device_feature_select < 2 ? static_cast<u32>(offered_features() >> (32 * m_device_feature_select)) : 0;
    case DRIVER_FEATURE_SELECT:
        return m_driver_feature_select;
    case DRIVER_FEATURE:
        return m_driver_feature_select < 2 ? static_cast<u32>(m_driver_features >> (32 * m_driver_feature_select)) : 0;
    case CONFIG_MSIX_VECTOR:
        return m_config_vector.load();
    case NUM_QUEUES:
        return static_cast<u32>(m_queues.size());
    case DEVICE_STATUS:
        return m_status.load();
    case CONFIG_GENERATION:
        return m_config_generation.load();
    case QUEUE_SELECT:
        return m_queue_select;
    case QUEUE_SIZE:
        return queue ? queue->size : 0;
    case QUEUE_MSIX_VECTOR:
        return queue ? queue->vector : pci::MsixTable::NO_VECTOR;
    case QUEUE_ENABLE:
        return queue && queue->enabled;
    case QUEUE_NOTIFY_OFF:
        return queue ? m_queue_select : 0;
    case QUEUE_DESC:
    case QUEUE_DESC + 4:
        return queue ? half(QUEUE_DESC, queue->descriptor_table) : 0;
    case QUEUE_DRIVER:
    case QUEUE_DRIVER + 4:
        return queue ? half(QUEUE_DRIVER, queue->driver_area) : 0;
    case QUEUE_DEVICE:
    case QUEUE_DEVICE + 4:
        return queue ? half(QUEUE_DEVICE, queue->device_area) : 0;
    default:
        (void)size;
        return 0;
    }
}

void PciTransport::common_write(u64 offset, size_t size, u32 value)
{
    Queue* queue = m_queue_select < m_queues.size() ? &m_queues[m_queue_select] : nullptr;
    // Queue fields may only change before the driver enables the queue (4.1.4.3.2), and none after
    // DRIVER_OK: the I/O thread serves what they were then.
    bool running = m_status.load() & STATUS_DRIVER_OK;
    bool queue_writable = queue && !queue->enabled && !running;
    auto set_half = [&](u64 field, u64& target) {
        if (offset == field)
            target = (target & 0xFFFF'FFFF'0000'0000) | value;
        else
            target = (target & 0xFFFF'FFFF) | (u64 { value } << 32);
    };
    switch (offset) {
    case DEVICE_FEATURE_SELECT:
        m_device_feature_select = value;
        return;
    case DRIVER_FEATURE_SELECT:
        m_driver_feature_select = value;
        return;
    case DRIVER_FEATURE:
        if (m_driver_feature_select < 2 && !(m_status.load() & STATUS_FEATURES_OK)) {
            u64 shift = 32 * m_driver_feature_select;
            m_driver_features = (m_driver_features & ~(0xFFFF'FFFFull << shift)) | (u64 { value } << shift);
        }
        return;
    case CONFIG_MSIX_VECTOR:
        // A vector the table does not have reads back as NO_VECTOR (4.1.5.1.2).
        m_config_vector.store(static_cast<u16>(value) < m_msix.vectors() ? static_cast<u16>(value) : pci::MsixTable::NO_VECTOR);
        return;
    case DEVICE_STATUS:
        set_status(static_cast<u8>(value));
        return;
    case QUEUE_SELECT:
        m_queue_select = static_cast<u16>(value);
        return;
    case QUEUE_SIZE:
        if (queue_writable)
            set_queue_size(*queue, value);
        return;
    case QUEUE_MSIX_VECTOR:
        if (queue && !running)
            queue->vector = static_cast<u16>(value) < m_msix.vectors() ? static_cast<u16>(value) : pci::MsixTable::NO_VECTOR;
        return;
    case QUEUE_ENABLE:
        // Only 1 may be written (4.1.4.3.2); disabling a queue takes a reset.
        if (queue_writable && value == 1)
            queue->enabled = true;
        return;
    case QUEUE_DESC:
    case QUEUE_DESC + 4:
        if (queue_writable)
            set_half(QUEUE_DESC, queue->descriptor_table);
        return;
    case QUEUE_DRIVER:
    case QUEUE_DRIVER + 4:
        if (queue_writable)
            set_half(QUEUE_DRIVER, queue->driver_area);
        return;
    case QUEUE_DEVICE:
    case QUEUE_DEVICE + 4:
        if (queue_writable)
            set_half(QUEUE_DEVICE, queue->device_area);
        return;
    default:
        (void)size;
        return;
    }
}

void PciTransport::set_queue_size(Queue& queue, u32 size)
{
    // A power of two no larger than the device's maximum (2.7); anything else is ignored.
    if (size != 0 && size <= m_device->queue_max_size() && (size & (size - 1)) == 0)
        queue.size = static_cast<u16>(size);
}

bool PciTransport::features_acceptable() const
{
    // 3.1.1: a subset of what was offered, with VERSION_1 (this transport has no legacy interface).
    return !(m_driver_features & ~offered_features()) && (m_driver_features & F_VERSION_1);
}

void PciTransport::set_status(u8 written)
{
    if (written == 0) {
        reset();
        return;
    }
    // DEVICE_NEEDS_RESET is the device's bit: a driver that adds a bit by reading the status and
    // writing it back with the bit or-ed in carries it along, which changes nothing.
    u8 current = m_status.load();
    u8 held = static_cast<u8>(current & ~STATUS_NEEDS_RESET);
    u8 wanted = static_cast<u8>(written & ~STATUS_NEEDS_RESET);
    if (wanted == held)
        return;
    if (current & (STATUS_NEEDS_RESET | STATUS_FAILED)) {
        // Only a reset starts over; a driver may still say it gave up.
        if ((held & ~wanted) == 0 && (wanted & ~held) == STATUS_FAILED)
            m_status.fetch_or(STATUS_FAILED);
        return;
    }
    if (held & ~wanted) {
        fail(Error::from_string(fmt::format("the driver cleared device status bits {:#x} without a reset (status {:#x} written over {:#x})",
            held & ~wanted, written, current)));
        return;
    }
    u8 added = static_cast<u8>(wanted & ~held);
    if ((added & STATUS_FEATURES_OK) && !features_acceptable()) {
        // The features are refused by leaving FEATURES_OK clear (3.1.1); the driver reads that back.
        added &= static_cast<u8>(~STATUS_FEATURES_OK);
        wanted &= static_cast<u8>(~STATUS_FEATURES_OK);
    }
    if (!in_initialization_order(wanted)) {
        fail(Error::from_string(fmt::format("the driver set device status {:#x} out of order over {:#x} (ACKNOWLEDGE, DRIVER, FEATURES_OK, "
                                    "DRIVER_OK, each with the ones before it)",
            written, current)));
        return;
    }
    // Only this thread adds driver bits, and every bit set is kept until reset(): adding them with
    // fetch_or keeps a DEVICE_NEEDS_RESET the I/O thread sets meanwhile.
    m_status.fetch_or(added);
    if (added & STATUS_DRIVER_OK)
        start();
}

void PciTransport::start()
{
    std::vector<QueueService::Queue> served;
    bool event_index = m_driver_features & F_RING_EVENT_IDX;
    for (u16 index = 0; index < m_queues.size(); ++index) {
        auto const& queue = m_queues[index];
        if (!queue.enabled)
            continue;
        QueueLayout layout { queue.size, queue.descriptor_table, queue.driver_area, queue.device_area };
        auto created = SplitQueue::create(m_memory, layout, event_index);
        if (!created) {
            fail(created.error().with_prefix(fmt::format("queue {}", index)));
            return;
        }
        served.push_back(QueueService::Queue { index, std::move(*created), queue.vector, queue.notify.fd() });
    }
    auto stop_event = EventFd::create();
    if (!stop_event) {
        fail(stop_event.error());
        return;
    }
    m_stop_event.emplace(std::move(*stop_event));
    m_device->activate(m_driver_features);
    m_pause_gate->started();
    m_io_thread = std::thread([this, served = std::move(served), stop_fd = m_stop_event->fd()]() mutable { serve_queues(std::move(served), stop_fd); });
}

void PciTransport::stop()
{
    if (m_io_thread.joinable()) {
        m_pause_gate->resume(); // a parked thread must see the stop event
        (void)m_stop_event->signal();
        m_io_thread.join();
    }
    m_stop_event.reset();
}

void PciTransport::reset()
{
    stop();
    m_device->reset();
    m_status.store(0);
    m_isr.store(0);
    m_driver_features = 0;
    m_config_vector.store(pci::MsixTable::NO_VECTOR);
    for (auto& queue : m_queues) {
        queue.size = m_device->queue_max_size();
        queue.vector = pci::MsixTable::NO_VECTOR;
        queue.enabled = false;
        queue.descriptor_table = queue.driver_area = queue.device_area = 0;
    }
}

void PciTransport::fail(Error const& error)
{
    if (m_status.fetch_or(STATUS_NEEDS_RESET) & STATUS_NEEDS_RESET)
        return; // already waiting for a reset; the driver was told
    // The guest decides how often this happens (a reset and a bad write again): one warning, then debug.
    auto level = m_failure_reported.exchange(true) ? spdlog::level::debug : spdlog::level::warn;
    spdlog::log(level, "virtio-{}: {}; the device needs a reset", device_type_name(m_device->device_type()), error.to_string());
    m_isr.fetch_or(ISR_CONFIG);
    ++m_config_generation;
    m_msix.signal(m_config_vector.load());
}

void PciTransport::serve_queues(std::vector<QueueService::Queue> queues, int stop_fd)
{
    // Started from the vCPU thread that set DRIVER_OK; without a name of its own it would pass for
    // that vCPU in ps and /proc.
    ::pthread_setname_np(::pthread_self(), fmt::format("virtio-{}", device_type_name(m_device->device_type())).c_str());
    auto interrupt = [this](u16 vector) {
        m_isr.fetch_or(ISR_QUEUE);
        m_msix.signal(vector);
    };
    QueueService service(*m_device, std::move(queues), stop_fd, *m_pause_gate, interrupt, m_io_poll);
    if (auto result = service.run(); !result)
        fail(result.error());
    m_pause_gate->ended();
}

} // namespace kasou::virtio
