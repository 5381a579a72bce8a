#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/event_fd.h"
#include "memory/guest_memory.h"
#include "pci/msix.h"
#include "pci/pci_device.h"
#include "virtio/notify_router.h"
#include "virtio/pause_gate.h"
#include "virtio/queue_service.h"
#include "virtio/virtio_device.h"

namespace kasou::virtio {

// The virtio over PCI transport, modern interface only (virtio 1.2, 4.1): one 64-bit memory BAR
// holding the common configuration, ISR, device configuration, notification and MSI-X regions,
// each described by a vendor capability. It negotiates features, takes the queue layout, and on
// DRIVER_OK starts an I/O thread (a QueueService) that polls the queues briefly between requests
// and otherwise waits on their notification eventfds (which a NotifyRouter, when given, routes from
// the notification addresses inside the kernel, so a guest notification costs no userspace exit;
// the routes follow the BAR while memory decoding is on) and calls the device's process(), and on
// the device's host_event_fd() when it has one (process_host_events()).
// A device error sets DEVICE_NEEDS_RESET and raises the configuration interrupt; the VM goes on.
// Interrupts go out through MSI-X only.
//
// The device status is a one-way state machine (virtio 1.2, 2.1 and 3.1.1): a non-zero write may
// only add bits, and ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK only in that order (several at
// once included). A write that clears a bit or skips one is refused: the status keeps its bits and
// gains DEVICE_NEEDS_RESET. Once DEVICE_NEEDS_RESET or FAILED is set, only FAILED may still be
// added; writing 0 resets (after the I/O thread has finished its requests and exited). So the I/O
// thread is started at most once between two resets. Queue fields and vectors written when the
// spec forbids it are ignored; out-of-range MSI-X vectors read back as NO_VECTOR.
//
// Threads: BAR and config accesses arrive on vCPU threads and take m_lock; the I/O thread takes
// no lock (what it reports goes through atomics and the MSI-X table's own lock). Queue settings are
// snapshotted when the driver sets DRIVER_OK, as the spec forbids changing them afterwards.
class PciTransport final : public pci::PciDevice {
public:
    static constexpr u64 BAR_SIZE = 0x8000;
    static constexpr u64 COMMON_OFFSET = 0x0000;
    static constexpr u64 ISR_OFFSET = 0x1000;
    static constexpr u64 DEVICE_OFFSET = 0x2000;
    static constexpr u64 NOTIFY_OFFSET = 0x3000;
    static constexpr u32 NOTIFY_MULTIPLIER = 4;
    static constexpr u64 MSIX_TABLE_OFFSET = 0x4000;
    static constexpr u64 MSIX_PBA_OFFSET = 0x6000;
    // Device status bits (virtio 1.2, 2.1).
    static constexpr u8 STATUS_ACKNOWLEDGE = 1;
    static constexpr u8 STATUS_DRIVER = 2;
    static constexpr u8 STATUS_DRIVER_OK = 4;
    static constexpr u8 STATUS_FEATURES_OK = 8;
    static constexpr u8 STATUS_NEEDS_RESET = 0x40;
    static constexpr u8 STATUS_FAILED = 0x80;

    // `router` (may be null: every notification then exits to userspace) must outlive the
    // transport; `io_poll` bounds the I/O thread's polling (0: it never polls).
    static ErrorOr<std::unique_ptr<PciTransport>> create(memory::GuestMemory const& memory, std::shared_ptr<VirtioDevice> device,
        pci::MsiSink& sink, NotifyRouter* router = nullptr, std::chrono::nanoseconds io_poll = AdaptivePoll::DEFAULT_MAXIMUM);
    ~PciTransport() override;

    pci::ConfigSpace& config() override { return m_config; }
    void config_written(u16 offset, u8 size) override;
    void bar_read(u8 bar, u64 offset, std::span<u8> data) override;
    void bar_write(u8 bar, u64 offset, std::span<u8 const> data) override;

    // The offset of queue `index`'s notification register in the BAR.
    static u64 notify_offset(u16 index) { return NOTIFY_OFFSET + u64 { index } * NOTIFY_MULTIPLIER; }
    // Brings the router's routes in line with the BAR: at its address while memory decoding is on,
    // none while it is off. Called after every configuration write, and by the machine once the
    // bus is attached. A route that cannot be made is logged; those notifications exit to userspace.
    void route_notifications();
    // Where the notifications are routed now (nullopt: nowhere).
    std::optional<u64> routed_base() const { return m_routed_base; }
    u16 queue_count() const { return static_cast<u16>(m_queues.size()); }
    u8 status() const;

    // Parks the I/O thread (if one runs) between requests, with every request it took answered,
    // and returns once it is parked; resume() lets it go on. Called while no vCPU runs, so the
    // driver cannot start or reset the device meanwhile. Destroying a paused transport is fine.
    void pause() { m_pause_gate->pause(); }
    void resume() { m_pause_gate->resume(); }

private:
    struct Queue {
        EventFd notify;
        u16 size { 0 };
        u16 vector { pci::MsixTable::NO_VECTOR };
        bool enabled { false };
        u64 descriptor_table { 0 };
        u64 driver_area { 0 };
        u64 device_area { 0 };
    };

    PciTransport(memory::GuestMemory const& memory, std::shared_ptr<VirtioDevice> device, pci::MsiSink& sink, NotifyRouter* router,
        std::chrono::nanoseconds io_poll, std::vector<Queue> queues, std::unique_ptr<PauseGate> pause_gate);

    u32 common_read(u64 offset, size_t size);
    void common_write(u64 offset, size_t size, u32 value);
    void set_status(u8 status);
    bool features_acceptable() const;
    void set_queue_size(Queue& queue, u32 size);
    void start();
    void stop();
    void reset();
    // The I/O thread: serves a snapshot, taken at DRIVER_OK, of each enabled queue.
    void serve_queues(std::vector<QueueService::Queue> queues, int stop_fd);
    void fail(Error const& error);
    u64 offered_features() const;

    memory::GuestMemory const& m_memory;
    std::shared_ptr<VirtioDevice> m_device;
    pci::ConfigSpace m_config;
    pci::MsixTable m_msix;
    u8 m_msix_capability { 0 };
    std::vector<Queue> m_queues;
    NotifyRouter* m_router;
    std::chrono::nanoseconds m_io_poll;
    std::optional<u64> m_routed_base; // changed only under the PCI bus's configuration lock

    mutable std::mutex m_lock;
    u32 m_device_feature_select { 0 };
    u32 m_driver_feature_select { 0 };
    u64 m_driver_features { 0 };
    std::atomic<u16> m_config_vector { pci::MsixTable::NO_VECTOR };
    u16 m_queue_select { 0 };
    std::atomic<u8> m_status { 0 };
    std::atomic<u8> m_isr { 0 };
    std::atomic<u8> m_config_generation { 0 };
    std::atomic<bool> m_userspace_notify_reported { false }; // logged once, at debug level
    std::atomic<bool> m_route_failure_reported { false };    // logged once
    std::atomic<bool> m_failure_reported { false };          // at warning level once, then at debug level
    std::optional<EventFd> m_stop_event;
    std::unique_ptr<PauseGate> m_pause_gate;
    std::thread m_io_thread;
};

} // namespace kasou::virtio
