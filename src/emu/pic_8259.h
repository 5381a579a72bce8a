#pragma once

#include <optional>

#include "base/error.h"
#include "base/types.h"

namespace kasou::emu {

// One Intel 8259A programmable interrupt controller (8259A datasheet, order 231468): eight request
// inputs, the IRR / ISR / IMR registers, the ICW1-4 initialization sequence and OCW1-3, fixed and
// rotating priority, specific and non-specific EOI, automatic EOI, poll mode, special mask mode,
// special fully nested mode, and edge or level triggering per input (the PC's ELCR, or ICW1's LTIM
// for all inputs). It holds no lock and calls nothing: PicPair cascades two of them and guards them.
// Invariants: every register is 8 bits wide, so any value the guest writes is a valid state.
class Pic8259 {
public:
    // Everything the chip holds, for snapshots: its registers and where it is in the ICW sequence.
    struct State {
        u8 elcr { 0 };
        u8 lines { 0 };
        u8 irr { 0 };
        u8 isr { 0 };
        u8 imr { 0 };
        u8 lowest_priority { 7 };
        u8 vector_base { 0 };
        u8 init_step { 0 };
        bool expect_icw4 { false };
        bool single { false };
        bool level_triggered_all { false };
        bool auto_eoi { false };
        bool rotate_on_auto_eoi { false };
        bool special_fully_nested { false };
        bool special_mask { false };
        bool poll { false };
        bool read_isr { false };
        bool operator==(State const&) const = default;
    };

    // elcr_mask: the inputs whose trigger mode software may change through the ELCR (on a PC, IRQ
    // 0-2, 8 and 13 are edge triggered only). A master's input 2 carries the slave.
    Pic8259(u8 elcr_mask, bool master)
        : m_elcr_mask(elcr_mask)
        , m_master(master)
    {
    }

    // Command port (A0 = 0) and data port (A0 = 1).
    void write(bool a0, u8 value);
    u8 read(bool a0);
    u8 elcr() const { return m_elcr; }
    void set_elcr(u8 value) { m_elcr = value & m_elcr_mask; }

    // Drives input `irq` (0-7): an edge-triggered input latches a request on its rising edge, a
    // level-triggered one requests while high.
    void set_input(u8 irq, bool level);
    // The input the chip would signal on INT now (highest priority request above every in-service
    // one), if any.
    std::optional<u8> pending() const;
    // The first INTA pulse for `irq` (a value from pending()): moves it from IRR to ISR, or only
    // rotates in automatic-EOI mode.
    void acknowledge(u8 irq);
    u8 vector_base() const { return m_vector_base; }
    u8 irr() const { return m_irr; }
    u8 isr() const { return m_isr; }
    u8 imr() const { return m_imr; }

    State state() const;
    // Refuses a state no sequence of writes could reach (an ICW step or priority out of range, an
    // ELCR bit this chip cannot have); `what` names the chip in the error.
    ErrorOr<void> set_state(State const& state, char const* what);

private:
    void initialize(u8 icw1);
    void write_ocw2(u8 value);
    u8 priority_of(u8 mask) const;
    u8 level_mask() const { return m_level_triggered_all ? 0xff : m_elcr; }

    u8 m_elcr_mask;
    bool m_master;
    u8 m_elcr { 0 };
    u8 m_lines { 0 }; // input levels, for edge detection
    u8 m_irr { 0 };
    u8 m_isr { 0 };
    u8 m_imr { 0 };
    u8 m_lowest_priority { 7 }; // priority rotates: the input after this one ranks highest
    u8 m_vector_base { 0 };
    u8 m_init_step { 0 }; // 0: initialized; 1-3: expecting ICW2-ICW4
    bool m_expect_icw4 { false };
    bool m_single { false };
    bool m_level_triggered_all { false };
    bool m_auto_eoi { false };
    bool m_rotate_on_auto_eoi { false };
    bool m_special_fully_nested { false };
    bool m_special_mask { false };
    bool m_poll { false };
    bool m_read_isr { false };
};

} // namespace kasou::emu
