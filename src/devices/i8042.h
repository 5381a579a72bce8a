#pragma once

#include <functional>
#include <mutex>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// The part of the i8042 keyboard controller that guests use without a keyboard: the command byte,
// self tests, the output port, and the CPU reset line (command 0xFE, or clearing bit 0 of the
// output port), which calls on_reset. Its offsets are those of ports 0x60-0x64: offset 0 is the
// data port, offset 4 the command/status port, 1-3 read as 0xFF. On a PC ports 0x61-0x63 belong to
// other devices, so it is inserted as two one-port windows (bus::OffsetWindow).
class I8042 final : public bus::BusDevice {
public:
    static constexpr u64 PORT = 0x60;
    static constexpr u64 DATA_OFFSET = 0;
    static constexpr u64 COMMAND_OFFSET = 4;

    // The controller's registers, for snapshots.
    struct State {
        u8 command_byte { 0x45 };
        u8 output_port { 0x01 };
        u8 pending_command { 0 };
        u8 output { 0 };
        bool output_full { false };
        bool operator==(State const&) const = default;
    };

    explicit I8042(std::function<void()> on_reset)
        : m_on_reset(std::move(on_reset))
    {
    }

    void read(u64 offset, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;

    State state();
    void set_state(State const& state);

private:
    void command(u8 value);
    void data_write(u8 value);
    void respond(u8 value);

    std::mutex m_lock;
    std::function<void()> m_on_reset;
    u8 m_command_byte { 0x45 }; // keyboard interrupt on, system flag, translation
    u8 m_output_port { 0x01 };  // bit 0: the CPU is not held in reset
    u8 m_pending_command { 0 }; // a command waiting for its data byte
    u8 m_output { 0 };
    bool m_output_full { false };
};

} // namespace kasou::devices
