#include "emu/pic_8259.h"

#include <fmt/format.h>

namespace kasou::emu {

namespace {

// 8259A datasheet, "Operation command words": the fields of the command port's value.
constexpr u8 ICW1_SELECT = 0x10;
constexpr u8 ICW1_IC4 = 0x01;
constexpr u8 ICW1_SNGL = 0x02;
constexpr u8 ICW1_LTIM = 0x08;
constexpr u8 OCW3_SELECT = 0x08;
constexpr u8 OCW3_POLL = 0x04;
constexpr u8 OCW3_READ_REGISTER = 0x02;
constexpr u8 OCW3_READ_ISR = 0x01;
constexpr u8 OCW3_SPECIAL_MASK_CHANGE = 0x40;
constexpr u8 OCW3_SPECIAL_MASK = 0x20;
constexpr u8 ICW4_AEOI = 0x02;
constexpr u8 ICW4_SFNM = 0x10;
constexpr u8 POLL_VALID = 0x80;

constexpr u8 bit(u8 irq) { return static_cast<u8>(1u << (irq & 7)); }

} // namespace

void Pic8259::initialize(u8 icw1)
{
    // ICW1 clears the mask, resets priority (IR7 lowest) and special mask mode, and reads IRR next;
    // edge detection restarts, so an input must rise again to request.
    m_lines = 0;
    m_irr &= level_mask();
    m_isr = 0;
    m_imr = 0;
    m_lowest_priority = 7;
    m_auto_eoi = false;
    m_rotate_on_auto_eoi = false;
    m_special_fully_nested = false;
    m_special_mask = false;
    m_poll = false;
    m_read_isr = false;
    m_expect_icw4 = icw1 & ICW1_IC4;
    m_single = icw1 & ICW1_SNGL;
    m_level_triggered_all = icw1 & ICW1_LTIM;
    m_init_step = 1;
}

void Pic8259::write(bool a0, u8 value)
{
    if (!a0) {
        if (value & ICW1_SELECT)
            initialize(value);
        else if (value & OCW3_SELECT) {
            if (value & OCW3_POLL)
                m_poll = true;
            if (value & OCW3_READ_REGISTER)
                m_read_isr = value & OCW3_READ_ISR;
            if (value & OCW3_SPECIAL_MASK_CHANGE)
                m_special_mask = value & OCW3_SPECIAL_MASK;
        } else
            write_ocw2(value);
        return;
    }
    switch (m_init_step) {
    case 0: // OCW1
        m_imr = value;
        break;
    case 1: // ICW2: T7-T3 of the vectors
        m_vector_base = value & 0xf8;
        m_init_step = m_single ? (m_expect_icw4 ? 3 : 0) : 2;
        break;
    case 2: // ICW3: cascade wiring, fixed on a PC
        m_init_step = m_expect_icw4 ? 3 : 0;
        break;
    default: // ICW4
        m_auto_eoi = value & ICW4_AEOI;
        m_special_fully_nested = value & ICW4_SFNM;
        m_init_step = 0;
        break;
    }
}

void Pic8259::write_ocw2(u8 value)
{
    u8 level = value & 7;
    switch (value >> 5) {
    case 0: // rotate in automatic EOI mode: clear
        m_rotate_on_auto_eoi = false;
        break;
    case 4: // rotate in automatic EOI mode: set
        m_rotate_on_auto_eoi = true;
        break;
    case 1:   // non-specific EOI
    case 5: { // rotate on non-specific EOI
        u8 priority = priority_of(m_isr);
        if (priority == 8)
            break;
        u8 irq = (m_lowest_priority + 1 + priority) & 7;
        m_isr &= ~bit(irq);
        if (value >> 5 == 5)
            m_lowest_priority = irq;
        break;
    }
    case 3: // specific EOI
        m_isr &= ~bit(level);
        break;
    case 7: // rotate on specific EOI
        m_isr &= ~bit(level);
        m_lowest_priority = level;
        break;
    case 6: // set priority: `level` becomes the lowest
        m_lowest_priority = level;
        break;
    default: // 2: no operation
        break;
    }
}

u8 Pic8259::read(bool a0)
{
    if (m_poll) {
        // Poll command: the next read is the poll word, and acknowledges like an INTA.
        m_poll = false;
        auto irq = pending();
        if (!irq)
            return 0;
        acknowledge(*irq);
        return POLL_VALID | *irq;
    }
    if (a0)
        return m_imr;
    return m_read_isr ? m_isr : m_irr;
}

void Pic8259::set_input(u8 irq, bool level)
{
    u8 mask = bit(irq);
    if (level_mask() & mask) {
        if (level)
            m_irr |= mask;
        else
            m_irr &= ~mask;
    } else if (level && !(m_lines & mask))
        m_irr |= mask;
    m_lines = level ? (m_lines | mask) : (m_lines & ~mask);
}

// The rank (0 = highest) of the highest-priority bit set in mask, 8 when none is.
u8 Pic8259::priority_of(u8 mask) const
{
    for (u8 rank = 0; rank < 8; ++rank) {
        if (mask & bit(m_lowest_priority + 1 + rank))
            return rank;
    }
    return 8;
}

std::optional<u8> Pic8259::pending() const
{
    u8 request = priority_of(m_irr & ~m_imr);
    if (request == 8)
        return std::nullopt;
    u8 in_service = m_isr;
    // Special mask mode: a masked in-service level no longer blocks lower levels.
    if (m_special_mask)
        in_service &= ~m_imr;
    // Special fully nested mode (master): the slave's input may interrupt while in service, so
    // a higher slave request reaches the CPU.
    if (m_special_fully_nested && m_master && !m_single)
        in_service &= ~bit(2);
    if (request < priority_of(in_service))
        return static_cast<u8>((m_lowest_priority + 1 + request) & 7);
    return std::nullopt;
}

void Pic8259::acknowledge(u8 irq)
{
    u8 mask = bit(irq);
    if (m_auto_eoi) {
        if (m_rotate_on_auto_eoi)
            m_lowest_priority = irq & 7;
    } else
        m_isr |= mask;
    // A level-triggered request stays in IRR while its input is high.
    if (!(level_mask() & mask))
        m_irr &= ~mask;
}

Pic8259::State Pic8259::state() const
{
    return State { m_elcr, m_lines, m_irr, m_isr, m_imr, m_lowest_priority, m_vector_base, m_init_step, m_expect_icw4, m_single,
        m_level_triggered_all, m_auto_eoi, m_rotate_on_auto_eoi, m_special_fully_nested, m_special_mask, m_poll, m_read_isr };
}

ErrorOr<void> Pic8259::set_state(State const& state, char const* what)
{
    if (state.init_step > 3)
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: initialization step {} (at most 3)", what, state.init_step));
    if (state.lowest_priority > 7)
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: lowest-priority input {} (at most 7)", what, state.lowest_priority));
    if (state.elcr & ~m_elcr_mask)
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: ELCR {:#04x} sets edge-only inputs", what, state.elcr));
    if (state.vector_base & 7)
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: vector base {:#04x} is not a multiple of 8", what, state.vector_base));
    m_elcr = state.elcr;
    m_lines = state.lines;
    m_irr = state.irr;
    m_isr = state.isr;
    m_imr = state.imr;
    m_lowest_priority = state.lowest_priority;
    m_vector_base = state.vector_base;
    m_init_step = state.init_step;
    m_expect_icw4 = state.expect_icw4;
    m_single = state.single;
    m_level_triggered_all = state.level_triggered_all;
    m_auto_eoi = state.auto_eoi;
    m_rotate_on_auto_eoi = state.rotate_on_auto_eoi;
    m_special_fully_nested = state.special_fully_nested;
    m_special_mask = state.special_mask;
    m_poll = state.poll;
    m_read_isr = state.read_isr;
    return {};
}

} // namespace kasou::emu
