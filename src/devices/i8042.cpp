#include "devices/i8042.h"

#include <algorithm>

namespace kasou::devices {

namespace {

// Command and status bits (IBM PC/AT technical reference, keyboard controller).
constexpr u8 STATUS_OUTPUT_FULL = 0x01;
constexpr u8 STATUS_SYSTEM_FLAG = 0x04;
constexpr u8 COMMAND_READ_BYTE = 0x20;
constexpr u8 COMMAND_WRITE_BYTE = 0x60;
constexpr u8 COMMAND_DISABLE_AUX = 0xA7;
constexpr u8 COMMAND_ENABLE_AUX = 0xA8;
constexpr u8 COMMAND_TEST_AUX = 0xA9;
constexpr u8 COMMAND_SELF_TEST = 0xAA;
constexpr u8 COMMAND_TEST_KEYBOARD = 0xAB;
constexpr u8 COMMAND_DISABLE_KEYBOARD = 0xAD;
constexpr u8 COMMAND_ENABLE_KEYBOARD = 0xAE;
constexpr u8 COMMAND_READ_OUTPUT_PORT = 0xD0;
constexpr u8 COMMAND_WRITE_OUTPUT_PORT = 0xD1;
constexpr u8 COMMAND_PULSE_RESET = 0xFE;
constexpr u8 SELF_TEST_PASSED = 0x55;
constexpr u8 INTERFACE_TEST_PASSED = 0x00;

} // namespace

void I8042::read(u64 offset, std::span<u8> data)
{
    std::lock_guard guard(m_lock);
    std::fill(data.begin(), data.end(), 0xFF);
    if (data.empty())
        return;
    if (offset == DATA_OFFSET) {
        data[0] = m_output;
        m_output_full = false;
    } else if (offset == COMMAND_OFFSET) {
        data[0] = STATUS_SYSTEM_FLAG | (m_output_full ? STATUS_OUTPUT_FULL : 0);
    }
}

void I8042::write(u64 offset, std::span<u8 const> data)
{
    if (data.empty())
        return;
    bool reset = false;
    {
        std::lock_guard guard(m_lock);
        if (offset == COMMAND_OFFSET) {
            reset = data[0] == COMMAND_PULSE_RESET;
            command(data[0]);
        } else if (offset == DATA_OFFSET) {
            data_write(data[0]);
            reset = (m_output_port & 0x01) == 0;
        }
    }
    if (reset)
        m_on_reset();
}

void I8042::respond(u8 value)
{
    m_output = value;
    m_output_full = true;
}

void I8042::command(u8 value)
{
    switch (value) {
    case COMMAND_READ_BYTE:
        respond(m_command_byte);
        break;
    case COMMAND_WRITE_BYTE:
    case COMMAND_WRITE_OUTPUT_PORT:
        m_pending_command = value;
        break;
    case COMMAND_SELF_TEST:
        respond(SELF_TEST_PASSED);
        break;
    case COMMAND_TEST_KEYBOARD:
    case COMMAND_TEST_AUX:
        respond(INTERFACE_TEST_PASSED);
        break;
    case COMMAND_READ_OUTPUT_PORT:
        respond(m_output_port);
        break;
    case COMMAND_DISABLE_KEYBOARD:
    case COMMAND_ENABLE_KEYBOARD:
    case COMMAND_DISABLE_AUX:
    case COMMAND_ENABLE_AUX:
    case COMMAND_PULSE_RESET:
    default:
        break;
    }
}

void I8042::data_write(u8 value)
{
    u8 pending = m_pending_command;
    m_pending_command = 0;
    if (pending == COMMAND_WRITE_BYTE)
        m_command_byte = value;
    else if (pending == COMMAND_WRITE_OUTPUT_PORT)
        m_output_port = value;
    // Bytes meant for a keyboard are dropped: there is none.
}

I8042::State I8042::state()
{
    std::lock_guard guard(m_lock);
    return State { m_command_byte, m_output_port, m_pending_command, m_output, m_output_full };
}

void I8042::set_state(State const& state)
{
    std::lock_guard guard(m_lock);
    m_command_byte = state.command_byte;
    m_output_port = state.output_port;
    m_pending_command = state.pending_command;
    m_output = state.output;
    m_output_full = state.output_full;
}

} // namespace kasou::devices
