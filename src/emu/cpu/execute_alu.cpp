// The integer arithmetic groups: ALU operations, shifts and rotates, multiply and divide, bits.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

namespace {

using Op = LazyFlags::Op;

// Status flags from a result whose CF / OF come from elsewhere (shifts, multiplies).
u64 result_flags(u64 result, u8 size)
{
    u64 flags = 0;
    result &= size_mask(size);
    if (result == 0)
        flags |= rflags::ZF;
    if (result & sign_bit(size))
        flags |= rflags::SF;
    if (even_parity(result))
        flags |= rflags::PF;
    return flags;
}

} // namespace

bool Cpu::execute_alu(DecodedInstruction const& instruction)
{
    u8 const size = instruction.operands[0].size;
    u64 const mask = size_mask(size);
    auto& flags = m_state.flags;
    u64 source = 0;
    if (instruction.operand_count > 1 && !read_operand(instruction, 1, source))
        return false;
    source &= mask;

    switch (instruction.mnemonic) {
    case ZYDIS_MNEMONIC_CMP:
    case ZYDIS_MNEMONIC_TEST: {
        u64 destination;
        if (!read_operand(instruction, 0, destination))
            return false;
        if (instruction.mnemonic == ZYDIS_MNEMONIC_CMP)
            flags.set(Op::Sub, size, destination, source, (destination - source) & mask);
        else
            flags.set(Op::Logic, size, destination, source, destination & source);
        m_state.rip = next_rip(instruction);
        return true;
    }
    default:
        break;
    }

    bool const uses_carry = instruction.mnemonic == ZYDIS_MNEMONIC_ADC || instruction.mnemonic == ZYDIS_MNEMONIC_SBB;
    bool const carry = uses_carry && flags.carry();
    auto compute = [&](u64 destination) -> u64 {
        destination &= mask;
        u64 result = 0;
        switch (instruction.mnemonic) {
        case ZYDIS_MNEMONIC_ADD:
            result = (destination + source) & mask;
            flags.set(Op::Add, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_ADC:
            result = (destination + source + carry) & mask;
            flags.set(Op::Add, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_SUB:
            result = (destination - source) & mask;
            flags.set(Op::Sub, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_SBB:
            result = (destination - source - carry) & mask;
            flags.set(Op::Sub, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_AND:
            result = destination & source;
            flags.set(Op::Logic, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_OR:
            result = destination | source;
            flags.set(Op::Logic, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_XOR:
            result = destination ^ source;
            flags.set(Op::Logic, size, destination, source, result);
            break;
        case ZYDIS_MNEMONIC_INC:
            result = (destination + 1) & mask;
            flags.set_keeping_carry(Op::Inc, size, destination, result);
            break;
        case ZYDIS_MNEMONIC_DEC:
            result = (destination - 1) & mask;
            flags.set_keeping_carry(Op::Dec, size, destination, result);
            break;
        case ZYDIS_MNEMONIC_NEG:
            result = (0 - destination) & mask;
            flags.set(Op::Sub, size, 0, destination, result);
            break;
        default: // NOT
            result = ~destination & mask;
            break;
        }
        return result;
    };
    // ADC / SBB with a carry in: CF and AF need the carry, which the plain Add / Sub formula
    // finds from the result, so they are right as recorded.
    if (!modify(instruction, 0, compute))
        return false;
    m_state.rip = next_rip(instruction);
    return true;
}

bool Cpu::execute_shift(DecodedInstruction const& instruction)
{
    u8 const size = instruction.operands[0].size;
    u8 const bits = size * 8;
    u64 const mask = size_mask(size);
    auto const mnemonic = instruction.mnemonic;
    bool const double_shift = mnemonic == ZYDIS_MNEMONIC_SHLD || mnemonic == ZYDIS_MNEMONIC_SHRD;
    u64 count = 1;
    u64 other = 0;
    if (double_shift) {
        if (!read_operand(instruction, 1, other) || !read_operand(instruction, 2, count))
            return false;
    } else if (instruction.operand_count > 1 && !read_operand(instruction, 1, count)) {
        return false;
    }
    count &= size == 8 ? 63 : 31;
    if (count == 0) {
        // No flags change, no write (a memory operand is still checked by hardware: FIXME).
        m_state.rip = next_rip(instruction);
        return true;
    }
    auto& flags = m_state.flags;
    bool const carry_in = flags.carry();
    auto compute = [&](u64 value) -> u64 {
        value &= mask;
        u64 result = 0;
        bool cf = false, of = false;
        switch (mnemonic) {
        case ZYDIS_MNEMONIC_SHL:
            result = count < 64 ? (value << count) & mask : 0;
            cf = count <= bits ? (value >> (bits - count)) & 1 : 0;
            of = ((result & sign_bit(size)) != 0) != cf;
            flags.set_materialized(rflags::STATUS, result_flags(result, size) | (cf ? rflags::CF : 0) | (of ? rflags::OF : 0));
            return result;
        case ZYDIS_MNEMONIC_SHR:
            result = count < 64 ? value >> count : 0;
            cf = (value >> (count - 1)) & 1;
            of = (value & sign_bit(size)) != 0;
            flags.set_materialized(rflags::STATUS, result_flags(result, size) | (cf ? rflags::CF : 0) | (of && count == 1 ? rflags::OF : 0));
            return result;
        case ZYDIS_MNEMONIC_SAR: {
            i64 signed_value = static_cast<i64>(sign_extend(value, size));
            result = static_cast<u64>(signed_value >> std::min<u64>(count, 63)) & mask;
            cf = (static_cast<u64>(signed_value >> std::min<u64>(count - 1, 63))) & 1;
            flags.set_materialized(rflags::STATUS, result_flags(result, size) | (cf ? rflags::CF : 0));
            return result;
        }
        case ZYDIS_MNEMONIC_ROL: {
            u64 n = count % bits;
            result = n ? ((value << n) | (value >> (bits - n))) & mask : value;
            cf = result & 1;
            of = ((result & sign_bit(size)) != 0) != cf;
            flags.set_materialized(rflags::CF | rflags::OF, (cf ? rflags::CF : 0) | (of ? rflags::OF : 0));
            return result;
        }
        case ZYDIS_MNEMONIC_ROR: {
            u64 n = count % bits;
            result = n ? ((value >> n) | (value << (bits - n))) & mask : value;
            cf = (result & sign_bit(size)) != 0;
            of = cf != (((result >> (bits - 2)) & 1) != 0);
            flags.set_materialized(rflags::CF | rflags::OF, (cf ? rflags::CF : 0) | (of ? rflags::OF : 0));
            return result;
        }
        case ZYDIS_MNEMONIC_RCL:
        case ZYDIS_MNEMONIC_RCR: {
            u64 n = count % (bits + 1);
            result = value;
            cf = carry_in;
            for (u64 i = 0; i < n; ++i) {
                if (mnemonic == ZYDIS_MNEMONIC_RCL) {
                    bool out = (result & sign_bit(size)) != 0;
                    result = ((result << 1) | cf) & mask;
                    cf = out;
                } else {
                    bool out = result & 1;
                    result = (result >> 1) | (cf ? sign_bit(size) : 0);
                    cf = out;
                }
            }
            if (mnemonic == ZYDIS_MNEMONIC_RCL)
                of = ((result & sign_bit(size)) != 0) != cf;
            else
                of = ((result >> (bits - 1)) & 1) != ((result >> (bits - 2)) & 1);
            flags.set_materialized(rflags::CF | rflags::OF, (cf ? rflags::CF : 0) | (of ? rflags::OF : 0));
            return result;
        }
        case ZYDIS_MNEMONIC_SHLD: {
            other &= mask;
            u128 wide = (static_cast<u128>(value) << bits) | other;
            result = static_cast<u64>((wide << count) >> bits) & mask;
            cf = count <= bits ? (value >> (bits - count)) & 1 : 0;
            of = ((result ^ value) & sign_bit(size)) != 0;
            flags.set_materialized(rflags::STATUS, result_flags(result, size) | (cf ? rflags::CF : 0) | (of ? rflags::OF : 0));
            return result;
        }
        default: { // SHRD
            other &= mask;
            u128 wide = (static_cast<u128>(other) << bits) | value;
            result = static_cast<u64>(wide >> count) & mask;
            cf = static_cast<u64>(wide >> (count - 1)) & 1;
            of = ((result ^ value) & sign_bit(size)) != 0;
            flags.set_materialized(rflags::STATUS, result_flags(result, size) | (cf ? rflags::CF : 0) | (of ? rflags::OF : 0));
            return result;
        }
        }
    };
    if (!modify(instruction, 0, compute))
        return false;
    m_state.rip = next_rip(instruction);
    return true;
}

bool Cpu::execute_multiply(DecodedInstruction const& instruction)
{
    auto& flags = m_state.flags;
    auto const mnemonic = instruction.mnemonic;
    if (mnemonic == ZYDIS_MNEMONIC_IMUL && instruction.operand_count >= 2) {
        // IMUL r, r/m (, imm): truncated signed product.
        u8 const size = instruction.operands[0].size;
        u64 a, b;
        int const first = instruction.operand_count == 3 ? 1 : 0;
        if (!read_operand(instruction, first, a) || !read_operand(instruction, first + 1, b))
            return false;
        i128 product = static_cast<i128>(static_cast<i64>(sign_extend(a & size_mask(size), size)))
            * static_cast<i64>(sign_extend(b & size_mask(size), size));
        u64 result = static_cast<u64>(product) & size_mask(size);
        bool overflow = product != static_cast<i128>(static_cast<i64>(sign_extend(result, size)));
        write_gpr(instruction.operands[0].reg, size, result);
        flags.set_materialized(rflags::STATUS, result_flags(result, size) | (overflow ? rflags::CF | rflags::OF : 0));
        m_state.rip = next_rip(instruction);
        return true;
    }
    u64 source;
    if (!read_operand(instruction, 0, source))
        return false;
    u8 const size = instruction.operands[0].size;
    u8 const bits = size * 8;
    u64 const mask = size_mask(size);
    source &= mask;
    // The implicit operand pair: AX for bytes, else rDX:rAX.
    u64 low = m_state.gpr[0] & mask;
    u64 high = size == 1 ? (m_state.gpr[0] >> 8) & 0xFF : m_state.gpr[2] & mask;
    auto store = [&](u64 new_low, u64 new_high) {
        if (size == 1) {
            write_gpr(0, 2, (new_low & 0xFF) | ((new_high & 0xFF) << 8));
        } else {
            write_gpr(0, size, new_low);
            write_gpr(2, size, new_high);
        }
    };
    u128 const dividend = (static_cast<u128>(high) << bits) | low;
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_MUL: {
        u128 product = static_cast<u128>(low) * source;
        u64 product_high = static_cast<u64>(product >> bits) & mask;
        store(static_cast<u64>(product) & mask, product_high);
        flags.set_materialized(rflags::STATUS, result_flags(static_cast<u64>(product), size) | (product_high ? rflags::CF | rflags::OF : 0));
        break;
    }
    case ZYDIS_MNEMONIC_IMUL: {
        i128 product = static_cast<i128>(static_cast<i64>(sign_extend(low, size))) * static_cast<i64>(sign_extend(source, size));
        u64 result = static_cast<u64>(product) & mask;
        bool overflow = product != static_cast<i128>(static_cast<i64>(sign_extend(result, size)));
        store(result, static_cast<u64>(product >> bits) & mask);
        flags.set_materialized(rflags::STATUS, result_flags(result, size) | (overflow ? rflags::CF | rflags::OF : 0));
        break;
    }
    case ZYDIS_MNEMONIC_DIV: {
        if (source == 0)
            return fault(Vector::DE);
        u128 quotient = dividend / source;
        if (quotient > mask)
            return fault(Vector::DE);
        store(static_cast<u64>(quotient), static_cast<u64>(dividend % source));
        break;
    }
    default: { // IDIV
        if (source == 0)
            return fault(Vector::DE);
        // The dividend as a signed 2*bits number.
        i128 signed_dividend = static_cast<i128>(dividend);
        if (bits == 64)
            signed_dividend = static_cast<i128>(dividend); // already two's complement in 128 bits
        else if (dividend >> (2 * bits - 1))
            signed_dividend = static_cast<i128>(dividend) - (static_cast<i128>(1) << (2 * bits));
        i64 divisor = static_cast<i64>(sign_extend(source, size));
        if (bits == 64 && signed_dividend == (static_cast<i128>(1) << 127) && divisor == -1)
            return fault(Vector::DE);
        i128 quotient = signed_dividend / divisor;
        i128 remainder = signed_dividend % divisor;
        i128 const limit = static_cast<i128>(1) << (bits - 1);
        if (quotient >= limit || quotient < -limit)
            return fault(Vector::DE);
        store(static_cast<u64>(quotient) & mask, static_cast<u64>(remainder) & mask);
        break;
    }
    }
    m_state.rip = next_rip(instruction);
    return true;
}

bool Cpu::execute_bits(DecodedInstruction const& instruction)
{
    auto& flags = m_state.flags;
    auto const mnemonic = instruction.mnemonic;
    u8 const size = instruction.operands[0].size;
    u8 const bits = size * 8;
    u64 const mask = size_mask(size);
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_BSWAP: {
        u64 value = read_gpr(instruction.operands[0]);
        write_gpr(instruction.operands[0].reg, size, size == 8 ? __builtin_bswap64(value) : __builtin_bswap32(static_cast<u32>(value)));
        break;
    }
    case ZYDIS_MNEMONIC_BT:
    case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC: {
        u64 offset;
        if (!read_operand(instruction, 1, offset))
            return false;
        Operand const& target = instruction.operands[0];
        DecodedInstruction adjusted = instruction;
        if (target.kind == Operand::Kind::Memory && instruction.operands[1].kind == Operand::Kind::Gpr) {
            // A register bit offset reaches memory beyond the operand (Intel SDM vol. 2, BT).
            i64 signed_offset = static_cast<i64>(sign_extend(offset & mask, size));
            i64 unit = signed_offset >> (size == 8 ? 6 : size == 4 ? 5 : 4);
            adjusted.operands[0].value += unit * size;
            offset = static_cast<u64>(signed_offset) & (bits - 1);
        } else {
            offset &= bits - 1;
        }
        bool bit = false;
        auto compute = [&](u64 value) -> u64 {
            bit = (value >> offset) & 1;
            switch (mnemonic) {
            case ZYDIS_MNEMONIC_BTS: return value | (u64 { 1 } << offset);
            case ZYDIS_MNEMONIC_BTR: return value & ~(u64 { 1 } << offset);
            case ZYDIS_MNEMONIC_BTC: return value ^ (u64 { 1 } << offset);
            default: return value;
            }
        };
        if (mnemonic == ZYDIS_MNEMONIC_BT) {
            u64 value;
            if (!read_operand(adjusted, 0, value))
                return false;
            compute(value);
        } else if (!modify(adjusted, 0, compute)) {
            return false;
        }
        flags.set_materialized(rflags::CF, bit ? rflags::CF : 0);
        break;
    }
    default: {
        u64 source;
        if (!read_operand(instruction, 1, source))
            return false;
        source &= mask;
        Operand const& destination = instruction.operands[0];
        switch (mnemonic) {
        case ZYDIS_MNEMONIC_BSF:
        case ZYDIS_MNEMONIC_BSR:
            if (source == 0) {
                flags.set_materialized(rflags::ZF, rflags::ZF);
                break;
            }
            write_gpr(destination.reg, size, mnemonic == ZYDIS_MNEMONIC_BSF ? __builtin_ctzll(source) : 63 - __builtin_clzll(source));
            flags.set_materialized(rflags::ZF, 0);
            break;
        case ZYDIS_MNEMONIC_TZCNT:
        case ZYDIS_MNEMONIC_LZCNT: {
            u64 result = bits;
            if (source)
                result = mnemonic == ZYDIS_MNEMONIC_TZCNT ? __builtin_ctzll(source) : __builtin_clzll(source) - (64 - bits);
            write_gpr(destination.reg, size, result);
            flags.set_materialized(rflags::CF | rflags::ZF, (source == 0 ? rflags::CF : 0) | (result == 0 ? rflags::ZF : 0));
            break;
        }
        default: // POPCNT
            write_gpr(destination.reg, size, __builtin_popcountll(source));
            flags.set_materialized(rflags::STATUS, source == 0 ? rflags::ZF : 0);
            break;
        }
        break;
    }
    }
    m_state.rip = next_rip(instruction);
    return true;
}

} // namespace kasou::emu::cpu
