#pragma once

#include <span>

#include "base/error.h"
#include "base/types.h"
#include "virtio/split_queue.h"

namespace kasou::virtio {

// Device types (virtio 1.2, 5) and the transport-level feature bits (6).
constexpr u16 DEVICE_NET = 1;
constexpr u16 DEVICE_BLOCK = 2;
constexpr u16 DEVICE_CONSOLE = 3;
constexpr u16 DEVICE_ENTROPY = 4;
constexpr u16 DEVICE_VSOCK = 19;
// "net", "blk", "console", "rng", "vsock", or "dev" for another type.
char const* device_type_name(u16 type);

// Answers a driver's read of out.size() bytes at `offset` of a device-specific configuration
// space whose readable bytes are `config`: those bytes, and zeroes past their end.
void copy_config(std::span<u8 const> config, u64 offset, std::span<u8> out);

constexpr u64 F_RING_INDIRECT_DESC = 1ull << 28;
constexpr u64 F_RING_EVENT_IDX = 1ull << 29;
constexpr u64 F_VERSION_1 = 1ull << 32;

// What a virtio device model implements, apart from its transport: its type, features, config
// space and how it serves its queues. The transport calls process() on the device's I/O thread only,
// one queue at a time; read_config() and write_config() come from vCPU threads and must take the
// device's own lock if they touch state process() changes.
class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;

    virtual u16 device_type() const = 0;
    // Device-specific feature bits (the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX).
    virtual u64 device_features() const = 0;
    virtual u16 queue_count() const = 0;
    virtual u16 queue_max_size() const { return 256; }
    virtual void read_config(u64 offset, std::span<u8> data) = 0;
    virtual void write_config(u64, std::span<u8 const>) { }
    // The driver accepted `features` and set DRIVER_OK: queues are about to be served.
    virtual void activate(u64 features) { (void)features; }
    // Serves every request waiting on queue `index` (a receive queue keeps the buffers it has no
    // host data for, and fills them from process_host_events()). A malformed request (one the
    // spec says a driver must not make) is returned as an error: the transport then sets
    // NEEDS_RESET.
    virtual ErrorOr<void> process(u16 index, SplitQueue& queue) = 0;
    // The driver reset the device: forget negotiated state.
    virtual void reset() { }

    // Devices fed from the host side (a tap, a console input, sockets) name one descriptor the I/O
    // thread polls besides the queue notifications, -1 for none; it must stay the same for the
    // device's lifetime. When it is readable the transport calls process_host_events() on the I/O
    // thread with every served queue by index (nullptr for a queue the driver did not enable), then
    // raises the interrupts the driver asked for. The device must leave the descriptor unreadable
    // when it cannot make progress (no receive buffers), so the thread does not spin.
    virtual int host_event_fd() const { return -1; }
    virtual ErrorOr<void> process_host_events(std::span<SplitQueue* const> queues)
    {
        (void)queues;
        return {};
    }
};

} // namespace kasou::virtio
