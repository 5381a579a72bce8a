#pragma once

#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// The part of the i8042 keyboard controller that guests use, with just enough of a keyboard to
// deliver Ctrl+Alt+Del (as Firecracker's): the command byte, self tests, the output port, the CPU
// reset line (command 0xFE, or clearing bit 0 of the output port), which calls on_reset, and a
// keyboard that acknowledges every command (0xFA) and sends the three keys of Ctrl+Alt+Del in
// scan code set 2 on send_ctrl_alt_del(). Bytes from the keyboard wait in a 16-byte buffer; each
// one pulses IRQ 1 through on_keyboard_irq while the command byte enables the keyboard interrupt.
// Callbacks run without the device's lock held. Its offsets are those of ports 0x60-0x64: offset 0 is the
// data port, offset 4 the command/status port, 1-3 read as 0xFF. On a PC ports 0x61-0x63 belong to
// other devices, so it is inserted as two one-port windows (bus::OffsetWindow).
class I8042 final : public bus::BusDevice {
public:
    static constexpr u64 PORT = 0x60;
    static constexpr u64 DATA_OFFSET = 0;
    static constexpr u64 COMMAND_OFFSET = 4;

    static constexpr u32 KEYBOARD_IRQ = 1;
    static constexpr size_t BUFFER_SIZE = 16;

    // The controller's registers and the bytes waiting to be read, for snapshots.
    struct State {
        u8 command_byte { 0x45 };
        u8 output_port { 0x01 };
        u8 pending_command { 0 };
        std::vector<u8> output; // at most BUFFER_SIZE bytes, oldest first
        bool operator==(State const&) const = default;
    };

    I8042(std::function<void()> on_reset, std::function<void()> on_keyboard_irq)
        : m_on_reset(std::move(on_reset))
        , m_on_keyboard_irq(std::move(on_keyboard_irq))
    {
    }

    // Queues Ctrl, Alt and Del pressed (E0 71 for Del) and interrupts the guest; fails, queueing
    // nothing, while the buffer lacks room for all four bytes.
    ErrorOr<void> send_ctrl_alt_del();

    void read(u64 offset, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;

    State state();
    // Keeps at most BUFFER_SIZE bytes of state.output (the newest are dropped past it).
    void set_state(State const& state);

private:
    void command(u8 value);
    void data_write(u8 value);
    // A controller answer: replaces whatever was waiting, raises no interrupt.
    void respond(u8 value);
    // A keyboard byte: queued behind the others; returns whether to interrupt the guest.
    bool from_keyboard(u8 value);

    std::mutex m_lock;
    std::function<void()> m_on_reset;
    std::function<void()> m_on_keyboard_irq;
    u8 m_command_byte { 0x45 }; // keyboard interrupt on, system flag, translation
    u8 m_output_port { 0x01 };  // bit 0: the CPU is not held in reset
    u8 m_pending_command { 0 }; // a command waiting for its data byte
    std::deque<u8> m_output; // at most BUFFER_SIZE bytes
};

} // namespace kasou::devices
