#include "emu/lapic.h"

#include <cstring>

namespace kasou::emu {

namespace {

// Register offsets (Intel SDM vol. 3A, table 11-1).
constexpr u32 ID = 0x20;
constexpr u32 VERSION = 0x30;
constexpr u32 TPR = 0x80;
constexpr u32 PPR = 0xA0;
constexpr u32 EOI = 0xB0;
constexpr u32 LDR = 0xD0;
constexpr u32 SVR = 0xF0;
constexpr u32 ISR = 0x100;
constexpr u32 TMR = 0x180;
constexpr u32 IRR = 0x200;
constexpr u32 ESR = 0x280;
constexpr u32 ICR_LOW = 0x300;
constexpr u32 ICR_HIGH = 0x310;
constexpr u32 LVT_TIMER = 0x320;
constexpr u32 LVT_ERROR = 0x370;
constexpr u32 TIMER_INITIAL = 0x380;
constexpr u32 TIMER_CURRENT = 0x390;
constexpr u32 TIMER_DIVIDE = 0x3E0;
constexpr u32 SELF_IPI = 0x3F0; // x2APIC only
constexpr u32 LVT_MASKED = 1u << 16;
constexpr u32 TIMER_PERIODIC = 1u << 17;
constexpr u32 APIC_VERSION = 0x0005'0014; // version 0x14, six LVT entries

} // namespace

Lapic::Lapic(u32 id)
    : m_id(id)
{
    put(ID, id << 24);
    put(VERSION, APIC_VERSION);
    put(SVR, 0xFF);
    for (u32 lvt = LVT_TIMER; lvt <= LVT_ERROR; lvt += 0x10)
        put(lvt, LVT_MASKED);
}

u32 Lapic::get(u32 offset) const
{
    u32 value;
    std::memcpy(&value, m_page.data() + offset, 4);
    return value;
}

void Lapic::put(u32 offset, u32 value)
{
    std::memcpy(m_page.data() + offset, &value, 4);
}

bool Lapic::bit(u32 base, u8 vector) const
{
    return (get(base + (vector / 32) * 0x10) >> (vector % 32)) & 1;
}

void Lapic::set_bit(u32 base, u8 vector, bool value)
{
    u32 offset = base + (vector / 32) * 0x10;
    u32 word = get(offset);
    put(offset, value ? word | (1u << (vector % 32)) : word & ~(1u << (vector % 32)));
}

int Lapic::highest(u32 base) const
{
    for (int word = 7; word >= 0; --word) {
        u32 value = get(base + static_cast<u32>(word) * 0x10);
        if (value)
            return word * 32 + 31 - __builtin_clz(value);
    }
    return -1;
}

u64 Lapic::timer_period_ns() const
{
    u32 divide = get(TIMER_DIVIDE);
    u32 code = ((divide & 8) >> 1) | (divide & 3);
    u64 divisor = code == 7 ? 1 : (2u << code);
    return u64 { get(TIMER_INITIAL) } * divisor;
}

void Lapic::arm_timer(u64 now_ns)
{
    u64 period = timer_period_ns();
    if (period == 0)
        m_deadline_ns.reset();
    else
        m_deadline_ns = now_ns + period;
}

u32 Lapic::read(u32 offset, u64 now_ns)
{
    std::lock_guard guard(m_lock);
    offset &= 0xFF0;
    switch (offset) {
    case PPR: {
        int isr = highest(ISR);
        u32 tpr = get(TPR);
        u32 isr_class = isr < 0 ? 0 : static_cast<u32>(isr) & 0xF0;
        return (tpr & 0xF0) >= isr_class ? tpr : isr_class;
    }
    case TIMER_CURRENT: {
        if (!m_deadline_ns || *m_deadline_ns <= now_ns)
            return 0;
        u64 period = timer_period_ns();
        u64 initial = get(TIMER_INITIAL);
        return period ? static_cast<u32>((*m_deadline_ns - now_ns) * initial / period) : 0;
    }
    default:
        return get(offset);
    }
}

Lapic::WriteEffect Lapic::write(u32 offset, u32 value, u64 now_ns)
{
    std::lock_guard guard(m_lock);
    WriteEffect effect;
    offset &= 0xFF0;
    switch (offset) {
    case EOI: {
        int vector = highest(ISR);
        if (vector >= 0) {
            set_bit(ISR, static_cast<u8>(vector), false);
            if (bit(TMR, static_cast<u8>(vector))) {
                set_bit(TMR, static_cast<u8>(vector), false);
                effect.level_eoi = static_cast<u8>(vector);
            }
        }
        break;
    }
    case TPR:
    case LDR:
    case SVR:
    case ICR_HIGH:
    case TIMER_DIVIDE:
        put(offset, value);
        break;
    case ESR:
        put(ESR, 0);
        break;
    case ICR_LOW: {
        put(ICR_LOW, value & ~(1u << 12)); // delivered at once: never "send pending"
        Ipi ipi;
        ipi.vector = value & 0xFF;
        ipi.delivery_mode = (value >> 8) & 7;
        ipi.logical = (value >> 11) & 1;
        ipi.shorthand = (value >> 18) & 3;
        ipi.destination = get(ICR_HIGH);
        effect.ipi = ipi;
        break;
    }
    case TIMER_INITIAL:
        put(TIMER_INITIAL, value);
        arm_timer(now_ns);
        break;
    default:
        if (offset >= LVT_TIMER && offset <= LVT_ERROR)
            put(offset, value); // the six LVT entries
        break;             // the rest is read-only or reserved
    }
    return effect;
}

bool Lapic::read_msr(u32 index, u64& value, u64 now_ns)
{
    u32 offset = (index - 0x800) << 4;
    if (index < 0x800 || index > 0x8FF)
        return false;
    if (offset == ID) {
        value = m_id; // x2APIC: the whole 32-bit ID
        return true;
    }
    if (offset == LDR) {
        value = ((m_id >> 4) << 16) | (1u << (m_id & 0xF));
        return true;
    }
    if (offset == ICR_LOW) {
        std::lock_guard guard(m_lock);
        value = get(ICR_LOW) | (u64 { get(ICR_HIGH) } << 32);
        return true;
    }
    value = read(offset, now_ns);
    return true;
}

bool Lapic::write_msr(u32 index, u64 value, u64 now_ns, WriteEffect& effect)
{
    if (index < 0x800 || index > 0x8FF)
        return false;
    u32 offset = (index - 0x800) << 4;
    if (offset == ICR_LOW) {
        {
            std::lock_guard guard(m_lock);
            put(ICR_HIGH, static_cast<u32>(value >> 32));
        }
        effect = write(ICR_LOW, static_cast<u32>(value), now_ns);
        return true;
    }
    if (offset == SELF_IPI) {
        accept(static_cast<u8>(value), false);
        return true;
    }
    effect = write(offset, static_cast<u32>(value), now_ns);
    return true;
}

void Lapic::accept(u8 vector, bool level)
{
    std::lock_guard guard(m_lock);
    set_bit(IRR, vector, true);
    set_bit(TMR, vector, level);
}

std::optional<u8> Lapic::acknowledge()
{
    std::lock_guard guard(m_lock);
    if (!(get(SVR) & 0x100))
        return std::nullopt; // software-disabled
    int irr = highest(IRR);
    if (irr < 0)
        return std::nullopt;
    int isr = highest(ISR);
    u32 priority = std::max<u32>(get(TPR) & 0xF0, isr < 0 ? 0 : static_cast<u32>(isr) & 0xF0);
    if ((static_cast<u32>(irr) & 0xF0) <= priority)
        return std::nullopt;
    set_bit(IRR, static_cast<u8>(irr), false);
    set_bit(ISR, static_cast<u8>(irr), true);
    return static_cast<u8>(irr);
}

bool Lapic::has_pending()
{
    std::lock_guard guard(m_lock);
    return highest(IRR) >= 0;
}

std::optional<u64> Lapic::poll_timer(u64 now_ns)
{
    std::lock_guard guard(m_lock);
    if (!m_deadline_ns)
        return std::nullopt;
    if (now_ns < *m_deadline_ns)
        return m_deadline_ns;
    u32 lvt = get(LVT_TIMER);
    if (!(lvt & LVT_MASKED)) {
        set_bit(IRR, lvt & 0xFF, true);
        set_bit(TMR, lvt & 0xFF, false);
    }
    if (lvt & TIMER_PERIODIC) {
        u64 period = timer_period_ns();
        // Missed periods are dropped, as a real timer's interrupts coalesce in IRR.
        while (period && *m_deadline_ns <= now_ns)
            *m_deadline_ns += period;
    } else {
        m_deadline_ns.reset();
    }
    return m_deadline_ns;
}

arch::x86_64::LapicRegisters Lapic::registers()
{
    std::lock_guard guard(m_lock);
    return m_page;
}

void Lapic::set_registers(arch::x86_64::LapicRegisters const& registers, u64 now_ns)
{
    std::lock_guard guard(m_lock);
    m_page = registers;
    put(ID, m_id << 24);
    if (get(TIMER_INITIAL))
        arm_timer(now_ns);
    else
        m_deadline_ns.reset();
}

} // namespace kasou::emu
