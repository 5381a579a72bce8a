#include "emu/cpu/lazy_flags.h"

namespace kasou::emu::cpu {

void LazyFlags::set_keeping_carry(Op op, u8 size, u64 dst, u64 result)
{
    u64 carry = status() & rflags::CF;
    set(op, size, dst, 1, result);
    m_flags = carry;
}

void LazyFlags::set_materialized(u64 mask, u64 values)
{
    u64 current = status();
    m_flags = (current & ~mask) | (values & mask);
    m_op = Op::Materialized;
}

u64 LazyFlags::status() const
{
    if (m_op == Op::Materialized)
        return m_flags & rflags::STATUS;
    u64 const mask = size_mask(m_size);
    u64 const sign = sign_bit(m_size);
    u64 const result = m_result & mask;
    u64 flags = 0;
    if (result == 0)
        flags |= rflags::ZF;
    if (result & sign)
        flags |= rflags::SF;
    if (even_parity(result))
        flags |= rflags::PF;
    switch (m_op) {
    case Op::Materialized:
        break;
    case Op::Add:
    case Op::Inc: {
        u64 carries = (m_dst & m_src) | ((m_dst | m_src) & ~result);
        if (m_op == Op::Add ? (carries & sign) : (m_flags & rflags::CF))
            flags |= rflags::CF;
        if ((m_dst ^ result) & (m_src ^ result) & sign)
            flags |= rflags::OF;
        if ((m_dst ^ m_src ^ result) & 0x10)
            flags |= rflags::AF;
        break;
    }
    case Op::Sub:
    case Op::Dec: {
        u64 borrows = (~m_dst & m_src) | (~(m_dst ^ m_src) & result);
        if (m_op == Op::Sub ? (borrows & sign) : (m_flags & rflags::CF))
            flags |= rflags::CF;
        if ((m_dst ^ m_src) & (m_dst ^ result) & sign)
            flags |= rflags::OF;
        if ((m_dst ^ m_src ^ result) & 0x10)
            flags |= rflags::AF;
        break;
    }
    case Op::Logic:
        break;
    }
    return flags;
}

bool LazyFlags::carry() const
{
    return status() & rflags::CF;
}

bool LazyFlags::zero() const
{
    if (m_op == Op::Materialized)
        return m_flags & rflags::ZF;
    return (m_result & size_mask(m_size)) == 0;
}

bool LazyFlags::condition(u8 condition) const
{
    u64 const mask = size_mask(m_size);
    u64 const sign = sign_bit(m_size);
    bool holds;
    if (m_op == Op::Sub) {
        u64 const dst = m_dst & mask, src = m_src & mask;
        i64 const shift = 64 - m_size * 8;
        i64 const signed_dst = static_cast<i64>(dst << shift) >> shift, signed_src = static_cast<i64>(src << shift) >> shift;
        switch (condition >> 1) {
        case 1: holds = dst < src; break;                   // B
        case 2: holds = dst == src; break;                  // Z
        case 3: holds = dst <= src; break;                  // BE
        case 6: holds = signed_dst < signed_src; break;     // L
        case 7: holds = signed_dst <= signed_src; break;    // LE
        default: return condition_holds(condition, status());
        }
    } else if (m_op == Op::Logic) {
        u64 const result = m_result & mask;
        switch (condition >> 1) {
        case 0: holds = false; break;                         // O
        case 1: holds = false; break;                         // B
        case 2: holds = result == 0; break;                   // Z
        case 3: holds = result == 0; break;                   // BE
        case 4: holds = (result & sign) != 0; break;          // S
        case 6: holds = (result & sign) != 0; break;          // L: SF != OF, OF = 0
        case 7: holds = result == 0 || (result & sign); break; // LE
        default: return condition_holds(condition, status());
        }
    } else {
        return condition_holds(condition, status());
    }
    return (condition & 1) ? !holds : holds;
}

bool condition_holds(u8 condition, u64 f)
{
    bool const cf = f & rflags::CF, zf = f & rflags::ZF, sf = f & rflags::SF, of = f & rflags::OF, pf = f & rflags::PF;
    bool holds = false;
    switch (condition >> 1) {
    case 0: holds = of; break;              // O
    case 1: holds = cf; break;              // B
    case 2: holds = zf; break;              // Z
    case 3: holds = cf || zf; break;        // BE
    case 4: holds = sf; break;              // S
    case 5: holds = pf; break;              // P
    case 6: holds = sf != of; break;        // L
    case 7: holds = zf || (sf != of); break; // LE
    }
    return (condition & 1) ? !holds : holds;
}

} // namespace kasou::emu::cpu
