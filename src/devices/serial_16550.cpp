#include "devices/serial_16550.h"

#include <fmt/format.h>

namespace kasou::devices {

namespace {

// Register offsets and bits (National Semiconductor PC16550D data sheet).
constexpr u64 DATA = 0;             // RBR / THR, DLL when DLAB
constexpr u64 INTERRUPT_ENABLE = 1; // IER, DLM when DLAB
constexpr u64 INTERRUPT_ID = 2;     // IIR (read) / FCR (write)
constexpr u64 LINE_CONTROL = 3;
constexpr u64 MODEM_CONTROL = 4;
constexpr u64 LINE_STATUS = 5;
constexpr u64 MODEM_STATUS = 6;
constexpr u64 SCRATCH = 7;

constexpr u8 IER_RECEIVED_DATA = 0x01;
constexpr u8 IER_TRANSMITTER_EMPTY = 0x02;
constexpr u8 IER_MASK = 0x0F;
constexpr u8 IIR_NONE = 0x01;
constexpr u8 IIR_TRANSMITTER_EMPTY = 0x02;
constexpr u8 IIR_RECEIVED_DATA = 0x04;
constexpr u8 IIR_FIFO_ENABLED = 0xC0;
constexpr u8 FCR_ENABLE_FIFO = 0x01;
constexpr u8 LCR_DIVISOR_LATCH = 0x80;
constexpr u8 MCR_LOOPBACK = 0x10;
constexpr u8 LSR_DATA_READY = 0x01;
constexpr u8 LSR_THR_EMPTY = 0x20;
constexpr u8 LSR_TRANSMITTER_EMPTY = 0x40;
constexpr u8 MSR_CTS = 0x10;
constexpr u8 MSR_DSR = 0x20;
constexpr u8 MSR_DCD = 0x80;

} // namespace

Serial16550::Serial16550(OutputFunction output, IrqFunction set_irq)
    : m_output(std::move(output))
    , m_set_irq(std::move(set_irq))
{
}

void Serial16550::read(u64 offset, std::span<u8> data)
{
    std::lock_guard guard(m_lock);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = read_register(offset + i);
    update_irq();
}

void Serial16550::write(u64 offset, std::span<u8 const> data)
{
    std::lock_guard guard(m_lock);
    for (size_t i = 0; i < data.size(); ++i)
        write_register(offset + i, data[i]);
    update_irq();
}

void Serial16550::enqueue_input(std::span<u8 const> bytes)
{
    std::lock_guard guard(m_lock);
    for (u8 byte : bytes) {
        if (m_input.size() >= INPUT_LIMIT)
            break;
        m_input.push_back(byte);
    }
    update_irq();
}

u8 Serial16550::interrupt_identification() const
{
    u8 fifo = m_fifo_enabled ? IIR_FIFO_ENABLED : 0;
    if ((m_interrupt_enable & IER_RECEIVED_DATA) && !m_input.empty())
        return fifo | IIR_RECEIVED_DATA;
    if ((m_interrupt_enable & IER_TRANSMITTER_EMPTY) && m_transmitter_empty_pending)
        return fifo | IIR_TRANSMITTER_EMPTY;
    return fifo | IIR_NONE;
}

u8 Serial16550::read_register(u64 offset)
{
    bool divisor_latch = m_line_control & LCR_DIVISOR_LATCH;
    switch (offset) {
    case DATA: {
        if (divisor_latch)
            return m_divisor_low;
        if (m_input.empty())
            return 0;
        u8 byte = m_input.front();
        m_input.pop_front();
        return byte;
    }
    case INTERRUPT_ENABLE:
        return divisor_latch ? m_divisor_high : m_interrupt_enable;
    case INTERRUPT_ID: {
        u8 identification = interrupt_identification();
        // Reading the IIR while it reports "transmitter empty" acknowledges that interrupt.
        if ((identification & 0x0F) == IIR_TRANSMITTER_EMPTY)
            m_transmitter_empty_pending = false;
        return identification;
    }
    case LINE_CONTROL:
        return m_line_control;
    case MODEM_CONTROL:
        return m_modem_control;
    case LINE_STATUS:
        return LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY | (m_input.empty() ? 0 : LSR_DATA_READY);
    case MODEM_STATUS:
        if (m_modem_control & MCR_LOOPBACK) {
            // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
            u8 mcr = m_modem_control;
            return static_cast<u8>(((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) | ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4));
        }
        return MSR_CTS | MSR_DSR | MSR_DCD;
    case SCRATCH:
        return m_scratch;
    default:
        return 0xFF;
    }
}

void Serial16550::write_register(u64 offset, u8 value)
{
    bool divisor_latch = m_line_control & LCR_DIVISOR_LATCH;
    switch (offset) {
    case DATA:
        if (divisor_latch) {
            m_divisor_low = value;
            return;
        }
        if (m_modem_control & MCR_LOOPBACK) {
            if (m_input.size() < INPUT_LIMIT)
                m_input.push_back(value);
        } else {
            m_output(std::span(&value, 1));
        }
        m_transmitter_empty_pending = true;
        return;
    case INTERRUPT_ENABLE:
        if (divisor_latch) {
            m_divisor_high = value;
            return;
        }
        // Enabling the transmitter-empty interrupt with an empty transmitter raises it at once.
        if ((value & IER_TRANSMITTER_EMPTY) && !(m_interrupt_enable & IER_TRANSMITTER_EMPTY))
            m_transmitter_empty_pending = true;
        m_interrupt_enable = value & IER_MASK;
        return;
    case INTERRUPT_ID:
        m_fifo_enabled = value & FCR_ENABLE_FIFO;
        if (value & 0x02)
            m_input.clear();
        return;
    case LINE_CONTROL:
        m_line_control = value;
        return;
    case MODEM_CONTROL:
        m_modem_control = value & 0x1F;
        return;
    case SCRATCH:
        m_scratch = value;
        return;
    default:
        return; // LSR and MSR are read-only
    }
}

void Serial16550::update_irq()
{
    bool level = (interrupt_identification() & IIR_NONE) == 0;
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    m_set_irq(level);
}

Serial16550::State Serial16550::state()
{
    std::lock_guard guard(m_lock);
    return State { m_interrupt_enable, m_line_control, m_modem_control, m_scratch, m_divisor_low, m_divisor_high, m_fifo_enabled,
        m_transmitter_empty_pending, std::vector<u8>(m_input.begin(), m_input.end()) };
}

ErrorOr<void> Serial16550::set_state(State const& state)
{
    if (state.input.size() > INPUT_LIMIT)
        return make_error(ErrorKind::InvalidInput, fmt::format("UART: {} pending input bytes (at most {})", state.input.size(), INPUT_LIMIT));
    std::lock_guard guard(m_lock);
    m_interrupt_enable = state.interrupt_enable;
    m_line_control = state.line_control;
    m_modem_control = state.modem_control;
    m_scratch = state.scratch;
    m_divisor_low = state.divisor_low;
    m_divisor_high = state.divisor_high;
    m_fifo_enabled = state.fifo_enabled;
    m_transmitter_empty_pending = state.transmitter_empty_pending;
    m_input.assign(state.input.begin(), state.input.end());
    update_irq();
    return {};
}

} // namespace kasou::devices
