#pragma once

#include <functional>
#include <mutex>

#include "base/types.h"
#include "emu/pic_8259.h"

namespace kasou::emu {

// The PC's two cascaded 8259A PICs: the master at ports 0x20-0x21 (IRQ 0-7), the slave at
// 0xa0-0xa1 (IRQ 8-15) on the master's input 2, and the edge/level control registers (ELCR) at
// 0x4d0-0x4d1. Devices drive the 16 ISA lines with set_irq(); the CPU side asks
// interrupt_pending() and takes a vector with acknowledge() (both INTA cycles at once), which
// answers the spurious vector of IRQ 7 or IRQ 15 when the request vanished before the INTA.
// `intr` is called with the master's INT output each time it changes.
// Thread-safe: one lock guards both chips; `intr` runs under it and must not call back into the
// pair (lock order: the pair's lock, then whatever `intr` takes).
class PicPair {
public:
    using IntrFunction = std::function<void(bool level)>;

    static constexpr u16 MASTER_PORT = 0x20;
    static constexpr u16 SLAVE_PORT = 0xa0;
    static constexpr u16 ELCR_PORT = 0x4d0;
    static constexpr u16 PORT_COUNT = 2; // at each of the three ports above
    static constexpr u32 IRQ_COUNT = 16;
    static constexpr u8 CASCADE_IRQ = 2;

    struct State {
        Pic8259::State master;
        Pic8259::State slave;
        bool operator==(State const&) const = default;
    };

    explicit PicPair(IntrFunction intr);

    State state();
    // Replaces both chips' state (checked first: nothing changes on an error), then drives `intr`
    // with the output the restored chips give.
    ErrorOr<void> set_state(State const& state);

    // Lines >= IRQ_COUNT are ignored.
    void set_irq(u32 irq, bool level);
    bool interrupt_pending();
    // The vector the pair answers to an INTA sequence now.
    u8 acknowledge();

    u8 read_port(u16 port);
    void write_port(u16 port, u8 value);

private:
    void update_locked();

    std::mutex m_lock;
    IntrFunction m_intr;
    Pic8259 m_master { 0xf8, true };
    Pic8259 m_slave { 0xde, false };
    bool m_intr_level { false };
};

} // namespace kasou::emu
