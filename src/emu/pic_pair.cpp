#include "emu/pic_pair.h"

#include "base/try.h"

namespace kasou::emu {

namespace {
constexpr u8 SPURIOUS_IRQ = 7;
}

PicPair::PicPair(IntrFunction intr)
    : m_intr(std::move(intr))
{
}

void PicPair::update_locked()
{
    m_master.set_input(CASCADE_IRQ, m_slave.pending().has_value());
    bool level = m_master.pending().has_value();
    if (level != m_intr_level) {
        m_intr_level = level;
        m_intr(level);
    }
}

void PicPair::set_irq(u32 irq, bool level)
{
    if (irq >= IRQ_COUNT)
        return;
    std::lock_guard guard(m_lock);
    (irq < 8 ? m_master : m_slave).set_input(irq & 7, level);
    update_locked();
}

bool PicPair::interrupt_pending()
{
    std::lock_guard guard(m_lock);
    return m_intr_level;
}

u8 PicPair::acknowledge()
{
    std::lock_guard guard(m_lock);
    u8 vector;
    if (auto irq = m_master.pending()) {
        if (*irq == CASCADE_IRQ) {
            auto slave_irq = m_slave.pending();
            if (slave_irq)
                m_slave.acknowledge(*slave_irq);
            vector = m_slave.vector_base() + slave_irq.value_or(SPURIOUS_IRQ);
        } else
            vector = m_master.vector_base() + *irq;
        m_master.acknowledge(*irq);
    } else
        vector = m_master.vector_base() + SPURIOUS_IRQ;
    update_locked();
    return vector;
}

u8 PicPair::read_port(u16 port)
{
    std::lock_guard guard(m_lock);
    u8 value;
    switch (port) {
    case ELCR_PORT:
        return m_master.elcr();
    case ELCR_PORT + 1:
        return m_slave.elcr();
    case MASTER_PORT:
    case MASTER_PORT + 1:
        value = m_master.read(port & 1);
        break;
    case SLAVE_PORT:
    case SLAVE_PORT + 1:
        value = m_slave.read(port & 1);
        break;
    default:
        return 0xff;
    }
    update_locked(); // a poll read acknowledges
    return value;
}

void PicPair::write_port(u16 port, u8 value)
{
    std::lock_guard guard(m_lock);
    switch (port) {
    case ELCR_PORT:
        m_master.set_elcr(value);
        return;
    case ELCR_PORT + 1:
        m_slave.set_elcr(value);
        return;
    case MASTER_PORT:
    case MASTER_PORT + 1:
        m_master.write(port & 1, value);
        break;
    case SLAVE_PORT:
    case SLAVE_PORT + 1:
        m_slave.write(port & 1, value);
        break;
    default:
        return;
    }
    update_locked();
}

PicPair::State PicPair::state()
{
    std::lock_guard guard(m_lock);
    return State { m_master.state(), m_slave.state() };
}

ErrorOr<void> PicPair::set_state(State const& state)
{
    std::lock_guard guard(m_lock);
    Pic8259 master = m_master;
    Pic8259 slave = m_slave;
    TRY(master.set_state(state.master, "PIC master"));
    TRY(slave.set_state(state.slave, "PIC slave"));
    m_master = master;
    m_slave = slave;
    update_locked();
    return {};
}

} // namespace kasou::emu
