// Data movement: MOV family, LEA, stack, sign extension, flag instructions, hints; XCHG family.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

bool Cpu::execute_data(DecodedInstruction const& instruction)
{
    auto const mnemonic = instruction.mnemonic;
    u8 const width = instruction.width;
    auto& gpr = m_state.gpr;
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_MOV: {
        Operand const& destination = instruction.operands[0];
        Operand const& source = instruction.operands[1];
        if (destination.kind == Operand::Kind::Control || source.kind == Operand::Kind::Control
            || destination.kind == Operand::Kind::Debug || source.kind == Operand::Kind::Debug)
            return execute_system(instruction);
        u64 value;
        if (!read_operand(instruction, 1, value))
            return false;
        if (destination.kind == Operand::Kind::Segment) {
            if (destination.reg == static_cast<u8>(SegmentIndex::CS))
                return fault(Vector::UD);
            if (!load_segment(static_cast<SegmentIndex>(destination.reg), static_cast<u16>(value)))
                return false;
            if (destination.reg == static_cast<u8>(SegmentIndex::SS))
                m_state.interrupt_shadow = 1;
            m_leave_block = true;
            break;
        }
        if (source.kind == Operand::Kind::Segment && destination.kind == Operand::Kind::Gpr) {
            write_gpr(destination.reg, destination.size, value); // zero-extended to 32 / 64 bits
            break;
        }
        if (!write_operand(instruction, 0, value))
            return false;
        break;
    }
    case ZYDIS_MNEMONIC_MOVZX:
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD: {
        u64 value;
        if (!read_operand(instruction, 1, value))
            return false;
        u8 const source_size = instruction.operands[1].size;
        if (mnemonic != ZYDIS_MNEMONIC_MOVZX)
            value = sign_extend(value & size_mask(source_size), source_size);
        write_gpr(instruction.operands[0].reg, instruction.operands[0].size, value);
        break;
    }
    case ZYDIS_MNEMONIC_LEA:
        write_gpr(instruction.operands[0].reg, instruction.operands[0].size, effective_address(instruction, instruction.operands[1]));
        break;
    case ZYDIS_MNEMONIC_PUSH: {
        u64 value;
        if (!read_operand(instruction, 0, value))
            return false;
        if (!push(value, width))
            return false;
        break;
    }
    case ZYDIS_MNEMONIC_POP: {
        Operand const& destination = instruction.operands[0];
        u64 const old_rsp = gpr[4];
        u64 value;
        if (!pop(width, value))
            return false;
        if (destination.kind == Operand::Kind::Segment) {
            if (!load_segment(static_cast<SegmentIndex>(destination.reg), static_cast<u16>(value))) {
                gpr[4] = old_rsp;
                return false;
            }
            if (destination.reg == static_cast<u8>(SegmentIndex::SS))
                m_state.interrupt_shadow = 1;
            m_leave_block = true;
        } else if (!write_operand(instruction, 0, value)) {
            gpr[4] = old_rsp;
            return false;
        }
        break;
    }
    case ZYDIS_MNEMONIC_PUSHF:
    case ZYDIS_MNEMONIC_PUSHFD:
    case ZYDIS_MNEMONIC_PUSHFQ:
        if (!push(m_state.full_rflags() & ~(rflags::RF | rflags::VM), width))
            return false;
        break;
    case ZYDIS_MNEMONIC_POPF:
    case ZYDIS_MNEMONIC_POPFD:
    case ZYDIS_MNEMONIC_POPFQ: {
        u64 value;
        if (!pop(width, value))
            return false;
        u64 changeable = rflags::STATUS | rflags::TF | rflags::DF | rflags::NT | rflags::AC | rflags::ID;
        u8 const cpl = m_state.cpl();
        u8 const iopl = (m_state.rflags >> 12) & 3;
        if (cpl == 0)
            changeable |= rflags::IOPL;
        if (cpl <= iopl)
            changeable |= rflags::IF;
        if (width == 2)
            changeable &= 0xFFFF;
        m_state.set_full_rflags((m_state.full_rflags() & ~changeable) | (value & changeable));
        m_leave_block = true;
        break;
    }
    case ZYDIS_MNEMONIC_CBW:
    case ZYDIS_MNEMONIC_CWDE:
    case ZYDIS_MNEMONIC_CDQE:
        write_gpr(0, width, sign_extend(gpr[0] & size_mask(width / 2), width / 2));
        break;
    case ZYDIS_MNEMONIC_CWD:
    case ZYDIS_MNEMONIC_CDQ:
    case ZYDIS_MNEMONIC_CQO:
        write_gpr(2, width, (gpr[0] & sign_bit(width)) ? ~u64 { 0 } : 0);
        break;
    case ZYDIS_MNEMONIC_CLC:
    case ZYDIS_MNEMONIC_STC:
    case ZYDIS_MNEMONIC_CMC: {
        bool carry = mnemonic == ZYDIS_MNEMONIC_STC || (mnemonic == ZYDIS_MNEMONIC_CMC && !m_state.flags.carry());
        m_state.flags.set_materialized(rflags::CF, carry ? rflags::CF : 0);
        break;
    }
    case ZYDIS_MNEMONIC_CLD:
        m_state.rflags &= ~rflags::DF;
        break;
    case ZYDIS_MNEMONIC_STD:
        m_state.rflags |= rflags::DF;
        break;
    case ZYDIS_MNEMONIC_LAHF:
        write_gpr(0, 1, (m_state.full_rflags() & 0xFF) | rflags::RESERVED1, true);
        break;
    case ZYDIS_MNEMONIC_SAHF:
        m_state.flags.set_materialized(rflags::CF | rflags::PF | rflags::AF | rflags::ZF | rflags::SF, gpr[0] >> 8);
        break;
    case ZYDIS_MNEMONIC_PUSHA:
    case ZYDIS_MNEMONIC_PUSHAD: {
        u64 const old_rsp = gpr[4];
        for (int reg = 0; reg < 8; ++reg) {
            if (!push(reg == 4 ? old_rsp : gpr[reg], width)) {
                gpr[4] = old_rsp;
                return false;
            }
        }
        break;
    }
    case ZYDIS_MNEMONIC_POPA:
    case ZYDIS_MNEMONIC_POPAD: {
        u64 const old_rsp = gpr[4];
        u64 values[8];
        for (int reg = 7; reg >= 0; --reg) {
            if (!pop(width, values[reg])) {
                gpr[4] = old_rsp;
                return false;
            }
        }
        for (u8 reg = 0; reg < 8; ++reg) {
            if (reg != 4)
                write_gpr(reg, width, values[reg]);
        }
        break;
    }
    default: // NOP, PAUSE, fences and prefetches: nothing to do in an interpreter
        break;
    }
    m_state.rip = next_rip(instruction);
    return true;
}

bool Cpu::execute_atomic(DecodedInstruction const& instruction)
{
    auto const mnemonic = instruction.mnemonic;
    auto& flags = m_state.flags;
    if (mnemonic == ZYDIS_MNEMONIC_CMPXCHG8B || mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B) {
        Operand const& target = instruction.operands[0];
        u64 const linear = linear_address(target.segment, effective_address(instruction, target));
        bool const wide = mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B;
        if (wide && (linear & 15))
            return fault(Vector::GP, 0);
        u8* host = host_for_rmw(linear, wide ? 16 : 8);
        if (!host) {
            if (m_exception)
                return false;
            raise_undefined(instruction); // FIXME: CMPXCHG8B / 16B on MMIO
            return false;
        }
        auto& gpr = m_state.gpr;
        bool equal;
        if (wide) {
            // The host's own CMPXCHG16B (every x86-64 host kasou runs on has it), inline rather
            // than through libatomic.
            u64 low = gpr[0], high = gpr[2];
            asm volatile("lock cmpxchg16b %[target]"
                         : [target] "+m"(*reinterpret_cast<u128*>(host)), "+a"(low), "+d"(high), "=@ccz"(equal)
                         : "b"(gpr[3]), "c"(gpr[1])
                         : "memory");
            if (!equal) {
                gpr[0] = low;
                gpr[2] = high;
            }
        } else {
            u64 expected = (gpr[2] << 32) | (gpr[0] & 0xFFFF'FFFF);
            u64 desired = (gpr[1] << 32) | (gpr[3] & 0xFFFF'FFFF);
            equal = __atomic_compare_exchange_n(reinterpret_cast<u64*>(host), &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            if (!equal) {
                write_gpr(0, 4, expected);
                write_gpr(2, 4, expected >> 32);
            }
        }
        flags.set_materialized(rflags::ZF, equal ? rflags::ZF : 0);
        m_state.rip = next_rip(instruction);
        return true;
    }

    u8 const size = instruction.operands[0].size;
    u64 const mask = size_mask(size);
    Operand const& second = instruction.operands[1];
    u64 source = second.kind == Operand::Kind::Gpr ? read_gpr(second) : 0;
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_XCHG: {
        // XCHG with memory is locked whether or not it says so.
        DecodedInstruction locked = instruction;
        locked.prefixes |= DecodedInstruction::LOCK;
        if (second.kind == Operand::Kind::Memory)
            std::swap(locked.operands[0], locked.operands[1]);
        Operand const& register_operand = locked.operands[1];
        source = read_gpr(register_operand);
        u64 old = 0;
        if (!modify(locked, 0, [&](u64 value) { old = value & mask; return source; }))
            return false;
        write_gpr(register_operand.reg, size, old, register_operand.high_byte);
        break;
    }
    case ZYDIS_MNEMONIC_XADD: {
        u64 old = 0;
        if (!modify(instruction, 0, [&](u64 value) {
                old = value & mask;
                u64 result = (old + source) & mask;
                flags.set(LazyFlags::Op::Add, size, old, source, result);
                return result;
            }))
            return false;
        write_gpr(second.reg, size, old, second.high_byte);
        break;
    }
    default: { // CMPXCHG
        u64 const expected = m_state.gpr[0] & mask;
        u64 old = 0;
        if (!modify(instruction, 0, [&](u64 value) {
                old = value & mask;
                flags.set(LazyFlags::Op::Sub, size, expected, old, (expected - old) & mask);
                return old == expected ? source : old;
            }))
            return false;
        if (old != expected)
            write_gpr(0, size, old);
        break;
    }
    }
    m_state.rip = next_rip(instruction);
    return true;
}

} // namespace kasou::emu::cpu
