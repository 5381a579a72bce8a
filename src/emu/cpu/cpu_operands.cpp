// Operands: registers, effective addresses, segments, the stack.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

u64 Cpu::linear_address(SegmentIndex segment, u64 offset) const
{
    if (m_state.long_mode() && m_state.segments[1].l) {
        // 64-bit mode: only FS and GS have a base (Intel SDM vol. 3A, 3.2.4).
        if (segment == SegmentIndex::FS || segment == SegmentIndex::GS)
            return m_state.segments[static_cast<u8>(segment)].base + offset;
        return offset;
    }
    return (m_state.segments[static_cast<u8>(segment)].base + offset) & 0xFFFF'FFFF;
}

u64 Cpu::effective_address(DecodedInstruction const& instruction, Operand const& operand) const
{
    u64 address = static_cast<u64>(operand.value);
    if (operand.base == RIP_REGISTER)
        address += next_rip(instruction);
    else if (operand.base != NO_REGISTER)
        address += m_state.gpr[operand.base];
    if (operand.index != NO_REGISTER)
        address += m_state.gpr[operand.index] * operand.scale;
    return address & size_mask(instruction.address_size);
}

u64 Cpu::read_gpr(Operand const& operand) const
{
    u64 value = m_state.gpr[operand.reg];
    if (operand.high_byte)
        return (value >> 8) & 0xFF;
    return value & size_mask(operand.size);
}

void Cpu::write_gpr(u8 reg, u8 size, u64 value, bool high_byte)
{
    u64& target = m_state.gpr[reg];
    switch (size) {
    case 1:
        if (high_byte)
            target = (target & ~u64 { 0xFF00 }) | ((value & 0xFF) << 8);
        else
            target = (target & ~u64 { 0xFF }) | (value & 0xFF);
        break;
    case 2:
        target = (target & ~u64 { 0xFFFF }) | (value & 0xFFFF);
        break;
    case 4:
        target = value & 0xFFFF'FFFF; // a 32-bit write clears the upper half
        break;
    default:
        target = value;
        break;
    }
}

bool Cpu::read_operand(DecodedInstruction const& instruction, int index, u64& value)
{
    Operand const& operand = instruction.operands[index];
    switch (operand.kind) {
    case Operand::Kind::Gpr:
        value = read_gpr(operand);
        return true;
    case Operand::Kind::Memory:
        return read_memory(operand.segment, effective_address(instruction, operand), operand.size, value);
    case Operand::Kind::Immediate:
        value = static_cast<u64>(operand.value); // sign-extended where the encoding says so; users mask
        return true;
    case Operand::Kind::Segment:
        value = m_state.segments[operand.reg].selector;
        return true;
    default:
        raise_undefined(instruction);
        return false;
    }
}

bool Cpu::write_operand(DecodedInstruction const& instruction, int index, u64 value)
{
    Operand const& operand = instruction.operands[index];
    switch (operand.kind) {
    case Operand::Kind::Gpr:
        write_gpr(operand.reg, operand.size, value, operand.high_byte);
        return true;
    case Operand::Kind::Memory:
        return write_memory(operand.segment, effective_address(instruction, operand), operand.size, value);
    default:
        raise_undefined(instruction);
        return false;
    }
}

u8 Cpu::stack_size() const
{
    if (m_state.long_mode() && m_state.segments[1].l)
        return 8;
    return m_state.segments[2].db ? 4 : 2;
}

bool Cpu::push(u64 value, u8 size)
{
    u8 const width = stack_size();
    u64 rsp = (m_state.gpr[4] - size) & size_mask(width);
    if (!write_memory(SegmentIndex::SS, rsp, size, value))
        return false;
    write_gpr(4, width, rsp);
    return true;
}

bool Cpu::pop(u8 size, u64& value)
{
    u8 const width = stack_size();
    u64 rsp = m_state.gpr[4] & size_mask(width);
    if (!read_memory(SegmentIndex::SS, rsp, size, value))
        return false;
    write_gpr(4, width, rsp + size);
    return true;
}

void Cpu::jump(u64 target, u8 size)
{
    m_state.rip = target & size_mask(size);
}

} // namespace kasou::emu::cpu
