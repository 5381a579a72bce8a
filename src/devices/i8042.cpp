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
constexpr u8 COMMAND_BYTE_KEYBOARD_INTERRUPT = 0x01;
constexpr u8 KEYBOARD_ACK = 0xFA;
// Scan code set 2, the bytes Firecracker sends for Ctrl+Alt+Del.
constexpr u8 KEY_CTRL = 0x14;
constexpr u8 KEY_ALT = 0x11;
constexpr u8 KEY_EXTENDED = 0xE0;
constexpr u8 KEY_DEL = 0x71;

} // namespace

void I8042::read(u64 offset, std::span<u8> data)
{
    bool interrupt = false;
    {
        std::lock_guard guard(m_lock);
        std::fill(data.begin(), data.end(), 0xFF);
        if (data.empty())
            return;
        if (offset == DATA_OFFSET) {
            data[0] = 0;
            if (!m_output.empty()) {
                data[0] = m_output.front();
                m_output.pop_front();
            }
            // More bytes waiting: the guest reads on from its next interrupt.
            interrupt = !m_output.empty() && (m_command_byte & COMMAND_BYTE_KEYBOARD_INTERRUPT);
        } else if (offset == COMMAND_OFFSET) {
            data[0] = STATUS_SYSTEM_FLAG | (m_output.empty() ? 0 : STATUS_OUTPUT_FULL);
        }
    }
    if (interrupt)
        m_on_keyboard_irq();
}

ErrorOr<void> I8042::send_ctrl_alt_del()
{
    bool interrupt = false;
    {
        std::lock_guard guard(m_lock);
        if (BUFFER_SIZE - m_output.size() < 4)
            return make_error(ErrorKind::Busy, "the i8042 keyboard buffer is full: the guest is not reading its keyboard");
        for (u8 byte : { KEY_CTRL, KEY_ALT, KEY_EXTENDED, KEY_DEL })
            interrupt = from_keyboard(byte) || interrupt;
    }
    if (interrupt)
        m_on_keyboard_irq();
    return {};
}

void I8042::write(u64 offset, std::span<u8 const> data)
{
    if (data.empty())
        return;
    bool reset = false;
    bool interrupt = false;
    {
        std::lock_guard guard(m_lock);
        if (offset == COMMAND_OFFSET) {
            reset = data[0] == COMMAND_PULSE_RESET;
            command(data[0]);
        } else if (offset == DATA_OFFSET) {
            bool to_keyboard = m_pending_command == 0;
            data_write(data[0]);
            reset = (m_output_port & 0x01) == 0;
            if (to_keyboard) {
                // Every keyboard command is acknowledged, as a keyboard that does all it is told.
                m_output.clear();
                interrupt = from_keyboard(KEYBOARD_ACK);
            }
        }
    }
    if (reset)
        m_on_reset();
    if (interrupt)
        m_on_keyboard_irq();
}

void I8042::respond(u8 value)
{
    m_output.assign(1, value);
}

bool I8042::from_keyboard(u8 value)
{
    if (m_output.size() >= BUFFER_SIZE)
        return false;
    m_output.push_back(value);
    return (m_command_byte & COMMAND_BYTE_KEYBOARD_INTERRUPT) != 0;
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
}

I8042::State I8042::state()
{
    std::lock_guard guard(m_lock);
    return State { m_command_byte, m_output_port, m_pending_command, std::vector<u8>(m_output.begin(), m_output.end()) };
}

void I8042::set_state(State const& state)
{
    std::lock_guard guard(m_lock);
    m_command_byte = state.command_byte;
    m_output_port = state.output_port;
    m_pending_command = state.pending_command;
    m_output.assign(state.output.begin(), state.output.begin() + std::min(state.output.size(), BUFFER_SIZE));
}

} // namespace kasou::devices
