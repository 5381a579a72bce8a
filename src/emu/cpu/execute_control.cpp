// Control transfer: jumps, calls, returns, conditions, loops, software interrupts, IRET.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

bool Cpu::execute_control(DecodedInstruction const& instruction)
{
    auto const mnemonic = instruction.mnemonic;
    u8 const width = instruction.width;
    u64 const next = next_rip(instruction);
    Operand const& target = instruction.operands[0];
    // Where a near branch goes: a relative displacement, or a register / memory operand.
    auto near_target = [&](u64& destination) -> bool {
        if (target.kind == Operand::Kind::Relative) {
            destination = next + static_cast<u64>(target.value);
            return true;
        }
        return read_operand(instruction, 0, destination);
    };

    switch (mnemonic) {
    case ZYDIS_MNEMONIC_JMP:
    case ZYDIS_MNEMONIC_CALL: {
        bool const call = mnemonic == ZYDIS_MNEMONIC_CALL;
        if (target.kind == Operand::Kind::FarPointer)
            return far_transfer(target.far_selector, static_cast<u64>(target.value), call, width, next);
        if (target.kind == Operand::Kind::Memory && target.size > width) {
            // JMP / CALL m16:16/32/64: offset, then selector.
            u64 const offset = effective_address(instruction, target);
            u64 destination, selector;
            if (!read_memory(target.segment, offset, width, destination) || !read_memory(target.segment, offset + width, 2, selector))
                return false;
            return far_transfer(static_cast<u16>(selector), destination, call, width, next);
        }
        u64 destination;
        if (!near_target(destination))
            return false;
        if (call && !push(next, width))
            return false;
        jump(destination, width);
        return true;
    }
    case ZYDIS_MNEMONIC_RET: {
        if (instruction.opcode == 0xCA || instruction.opcode == 0xCB)
            return far_return(width, instruction.operand_count ? static_cast<u16>(target.value) : 0);
        u64 destination;
        if (!pop(width, destination))
            return false;
        if (instruction.operand_count && target.kind == Operand::Kind::Immediate)
            write_gpr(4, stack_size(), m_state.gpr[4] + static_cast<u16>(target.value));
        jump(destination, width);
        return true;
    }
    case ZYDIS_MNEMONIC_JCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE: {
        u8 const count_size = instruction.address_size;
        u64 count = m_state.gpr[1] & size_mask(count_size);
        bool taken;
        if (mnemonic == ZYDIS_MNEMONIC_JCXZ || mnemonic == ZYDIS_MNEMONIC_JECXZ || mnemonic == ZYDIS_MNEMONIC_JRCXZ) {
            taken = count == 0;
        } else {
            count = (count - 1) & size_mask(count_size);
            write_gpr(1, count_size, count);
            taken = count != 0;
            if (mnemonic == ZYDIS_MNEMONIC_LOOPE)
                taken = taken && m_state.flags.zero();
            else if (mnemonic == ZYDIS_MNEMONIC_LOOPNE)
                taken = taken && !m_state.flags.zero();
        }
        jump(taken ? next + static_cast<u64>(target.value) : next, taken ? width : 8);
        return true;
    }
    case ZYDIS_MNEMONIC_INT:
        return deliver(static_cast<u8>(target.value), false, 0, next, true);
    case ZYDIS_MNEMONIC_INT3:
        return deliver(static_cast<u8>(Vector::BP), false, 0, next, true);
    case ZYDIS_MNEMONIC_INTO:
        if (m_state.flags.status() & rflags::OF)
            return deliver(static_cast<u8>(Vector::OF), false, 0, next, true);
        m_state.rip = next;
        return true;
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ:
        return interrupt_return(width);
    case ZYDIS_MNEMONIC_LEAVE: {
        u8 const stack = stack_size();
        u64 const old_rsp = m_state.gpr[4];
        write_gpr(4, stack, m_state.gpr[5]);
        u64 value;
        if (!pop(width, value)) {
            m_state.gpr[4] = old_rsp;
            return false;
        }
        write_gpr(5, width, value);
        m_state.rip = next;
        return true;
    }
    case ZYDIS_MNEMONIC_ENTER: {
        u64 const old_rsp = m_state.gpr[4];
        u16 const frame = static_cast<u16>(instruction.operands[0].value);
        u8 const level = static_cast<u8>(instruction.operands[1].value) & 31;
        if (level != 0) {
            raise_undefined(instruction); // FIXME: ENTER with nesting levels
            return false;
        }
        if (!push(m_state.gpr[5], width))
            return false;
        u64 const frame_pointer = m_state.gpr[4];
        u64 new_rsp = (frame_pointer - frame) & size_mask(stack_size());
        u64 probe;
        if (frame && !read_memory(SegmentIndex::SS, new_rsp, 1, probe)) {
            m_state.gpr[4] = old_rsp;
            return false;
        }
        write_gpr(5, width, frame_pointer);
        write_gpr(4, stack_size(), new_rsp);
        m_state.rip = next;
        return true;
    }
    default:
        break;
    }

    bool const holds = m_state.flags.condition(instruction.condition);
    switch (instruction.opcode & 0xF0) {
    case 0x70:
    case 0x80: // Jcc
        jump(holds ? next + static_cast<u64>(target.value) : next, holds ? width : 8);
        return true;
    case 0x90: // SETcc
        if (!write_operand(instruction, 0, holds ? 1 : 0))
            return false;
        m_state.rip = next;
        return true;
    default: { // CMOVcc: the source is read (and may fault) either way; a 32-bit destination is
               // zero-extended even when the condition fails
        u64 value;
        if (!read_operand(instruction, 1, value))
            return false;
        Operand const& destination = instruction.operands[0];
        write_gpr(destination.reg, destination.size, holds ? value : read_gpr(destination));
        m_state.rip = next;
        return true;
    }
    }
}

} // namespace kasou::emu::cpu
