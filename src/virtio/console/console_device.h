#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "virtio/host_events.h"
#include "virtio/virtio_device.h"

namespace kasou::virtio::console {

// Feature bits (virtio 1.2, 5.3.3).
constexpr u64 F_SIZE = 1ull << 0;
constexpr u64 F_EMERG_WRITE = 1ull << 2;

constexpr u16 RECEIVEQ = 0;
constexpr u16 TRANSMITQ = 1;

struct ConsoleOptions {
    // Where keystrokes for the guest come from (-1: none) and where guest output goes (-1:
    // discarded). Both stay owned by the caller and must outlive the device; nothing else may read
    // input_fd while the device runs. Either may be a terminal, pipe, socket or (output) a file.
    int input_fd { -1 };
    int output_fd { -1 };
    // Terminal size offered with VIRTIO_CONSOLE_F_SIZE when both are non-zero.
    u16 cols { 0 };
    u16 rows { 0 };
};

// virtio-console with a single port (virtio 1.2, 5.3; no MULTIPORT): bytes the guest writes to
// port 0's transmitq go to the output descriptor; bytes read from the input descriptor fill the
// receiveq. EMERG_WRITE is offered, so a driver can print through the config space before its
// queues exist. Input waits in a small host buffer while the driver has no receive buffers, and is
// read only when the descriptor is ready, so the I/O thread never blocks on it and a blocking
// terminal on standard input needs no O_NONBLOCK. End of input (or an input error) stops input;
// the guest goes on. A failing output is reported once and its bytes dropped, so a guest never
// stalls on it.
//
// kasou wires it as `--console virtio`: ConsoleDevice::create({ input, output }).
class ConsoleDevice final : public VirtioDevice {
public:
    static ErrorOr<std::shared_ptr<ConsoleDevice>> create(ConsoleOptions options);

    u16 device_type() const override { return DEVICE_CONSOLE; }
    u64 device_features() const override;
    u16 queue_count() const override { return 2; }
    void read_config(u64 offset, std::span<u8> data) override;
    void write_config(u64 offset, std::span<u8 const> data) override;
    ErrorOr<void> process(u16 index, SplitQueue& queue) override;
    int host_event_fd() const override { return m_events.fd(); }
    ErrorOr<void> process_host_events(std::span<SplitQueue* const> queues) override;

private:
    ConsoleDevice(ConsoleOptions options, HostEvents events);

    ErrorOr<void> receive(SplitQueue& queue);
    ErrorOr<void> transmit(SplitQueue& queue);
    // Tops m_pending up from the input when it is ready; false when there is nothing to read.
    bool read_input();
    void write_output(std::span<u8 const> bytes);
    void end_input(char const* why);

    ConsoleOptions m_options;
    HostEvents m_events;
    std::vector<u8> m_pending; // input read from the host, not yet in a guest buffer
    std::atomic<bool> m_output_failed { false }; // written from the I/O thread and (EMERG_WRITE) vCPU threads
};

} // namespace kasou::virtio::console
