#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// A 16550A UART (COM1 at port 0x3f8, IRQ 4 on a PC) as Linux's 8250 driver and simple guests use
// it: divisor latch, FIFO control, line and modem status, scratch register, loopback, and the
// received-data and transmitter-empty interrupts. Transmitted bytes go to `output` at once (the
// transmitter is always empty); bytes given to enqueue_input() are received in order.
// The interrupt line is driven as a level: `set_irq(true)` while an enabled condition is pending,
// `set_irq(false)` when it clears; every call happens under the device lock, so edges are ordered.
class Serial16550 final : public bus::BusDevice {
public:
    using OutputFunction = std::function<void(std::span<u8 const>)>;
    using IrqFunction = std::function<void(bool level)>;

    static constexpr u64 COM1_PORT = 0x3f8;
    static constexpr u32 COM1_IRQ = 4;
    static constexpr u64 PORT_COUNT = 8;
    static constexpr size_t INPUT_LIMIT = 4096;

    // The registers and the received bytes the guest has not read yet, for snapshots.
    struct State {
        u8 interrupt_enable { 0 };
        u8 line_control { 0x03 };
        u8 modem_control { 0x08 };
        u8 scratch { 0 };
        u8 divisor_low { 0x0c };
        u8 divisor_high { 0 };
        bool fifo_enabled { false };
        bool transmitter_empty_pending { false };
        std::vector<u8> input; // at most INPUT_LIMIT bytes
        bool operator==(State const&) const = default;
    };

    Serial16550(OutputFunction output, IrqFunction set_irq);

    State state();
    // Refuses more than INPUT_LIMIT pending bytes; drives the IRQ line to what the state implies.
    ErrorOr<void> set_state(State const& state);

    void read(u64 offset, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;
    // Queues bytes typed by the user; bytes beyond INPUT_LIMIT waiting ones are dropped.
    void enqueue_input(std::span<u8 const> bytes);

private:
    u8 read_register(u64 offset);
    void write_register(u64 offset, u8 value);
    u8 interrupt_identification() const;
    void update_irq();

    std::mutex m_lock;
    OutputFunction m_output;
    IrqFunction m_set_irq;
    std::deque<u8> m_input;
    u8 m_interrupt_enable { 0 };
    u8 m_line_control { 0x03 };
    u8 m_modem_control { 0x08 };
    u8 m_scratch { 0 };
    u8 m_divisor_low { 0x0c }; // 9600 baud
    u8 m_divisor_high { 0 };
    bool m_fifo_enabled { false };
    bool m_transmitter_empty_pending { false };
    bool m_irq_level { false };
};

} // namespace kasou::devices
