#include "emu/cpu/decoder.h"

namespace kasou::emu::cpu {

namespace {

constexpr ZydisMachineMode MACHINE_MODES[] = { ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_MACHINE_MODE_LEGACY_32,
    ZYDIS_MACHINE_MODE_LONG_COMPAT_16, ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_MACHINE_MODE_LONG_64 };
constexpr ZydisStackWidth STACK_WIDTHS[] = { ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_32, ZYDIS_STACK_WIDTH_16,
    ZYDIS_STACK_WIDTH_32, ZYDIS_STACK_WIDTH_64 };

// A general-purpose register as (number, high byte), or false when `reg` is none.
bool gpr_number(ZydisRegister reg, u8& number, bool& high_byte)
{
    high_byte = false;
    if (reg >= ZYDIS_REGISTER_AL && reg <= ZYDIS_REGISTER_R15B) {
        u8 v = static_cast<u8>(reg - ZYDIS_REGISTER_AL);
        if (v >= 4 && v < 8) {
            number = v - 4;
            high_byte = true;
        } else {
            number = v >= 8 ? v - 4 : v;
        }
        return true;
    }
    for (ZydisRegister first : { ZYDIS_REGISTER_AX, ZYDIS_REGISTER_EAX, ZYDIS_REGISTER_RAX }) {
        if (reg >= first && reg < first + 16) {
            number = static_cast<u8>(reg - first);
            return true;
        }
    }
    return false;
}

u8 address_register(ZydisRegister reg)
{
    if (reg == ZYDIS_REGISTER_NONE)
        return NO_REGISTER;
    if (reg == ZYDIS_REGISTER_RIP || reg == ZYDIS_REGISTER_EIP || reg == ZYDIS_REGISTER_IP)
        return RIP_REGISTER;
    u8 number;
    bool high;
    return gpr_number(reg, number, high) ? number : NO_REGISTER;
}

SegmentIndex segment_of(ZydisRegister reg)
{
    if (reg >= ZYDIS_REGISTER_ES && reg <= ZYDIS_REGISTER_GS)
        return static_cast<SegmentIndex>(reg - ZYDIS_REGISTER_ES);
    return SegmentIndex::DS;
}

Operand convert(ZydisDecodedOperand const& in)
{
    Operand out;
    out.size = static_cast<u8>(in.size / 8);
    switch (in.type) {
    case ZYDIS_OPERAND_TYPE_REGISTER: {
        ZydisRegister reg = in.reg.value;
        if (gpr_number(reg, out.reg, out.high_byte)) {
            out.kind = Operand::Kind::Gpr;
        } else if (reg >= ZYDIS_REGISTER_ES && reg <= ZYDIS_REGISTER_GS) {
            out.kind = Operand::Kind::Segment;
            out.reg = static_cast<u8>(reg - ZYDIS_REGISTER_ES);
        } else if (reg >= ZYDIS_REGISTER_CR0 && reg <= ZYDIS_REGISTER_CR15) {
            out.kind = Operand::Kind::Control;
            out.reg = static_cast<u8>(reg - ZYDIS_REGISTER_CR0);
        } else if (reg >= ZYDIS_REGISTER_DR0 && reg <= ZYDIS_REGISTER_DR15) {
            out.kind = Operand::Kind::Debug;
            out.reg = static_cast<u8>(reg - ZYDIS_REGISTER_DR0);
        } else {
            out.kind = Operand::Kind::Other;
        }
        break;
    }
    case ZYDIS_OPERAND_TYPE_MEMORY:
        out.kind = Operand::Kind::Memory;
        out.segment = segment_of(in.mem.segment);
        out.base = address_register(in.mem.base);
        out.index = address_register(in.mem.index);
        out.scale = in.mem.scale;
        out.value = in.mem.disp.has_displacement ? in.mem.disp.value : 0;
        break;
    case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        out.kind = in.imm.is_relative ? Operand::Kind::Relative : Operand::Kind::Immediate;
        out.value = in.imm.is_signed ? in.imm.value.s : static_cast<i64>(in.imm.value.u);
        break;
    case ZYDIS_OPERAND_TYPE_POINTER:
        out.kind = Operand::Kind::FarPointer;
        out.far_selector = in.ptr.segment;
        out.value = in.ptr.offset;
        break;
    default:
        out.kind = Operand::Kind::Other;
        break;
    }
    return out;
}

bool ends_block(ZydisDecodedInstruction const& in)
{
    switch (in.meta.category) {
    case ZYDIS_CATEGORY_COND_BR:
    case ZYDIS_CATEGORY_UNCOND_BR:
    case ZYDIS_CATEGORY_CALL:
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_INTERRUPT:
    case ZYDIS_CATEGORY_SYSCALL:
    case ZYDIS_CATEGORY_SYSRET:
    case ZYDIS_CATEGORY_SYSTEM:
        return true;
    default:
        return in.mnemonic == ZYDIS_MNEMONIC_LOOP || in.mnemonic == ZYDIS_MNEMONIC_LOOPE || in.mnemonic == ZYDIS_MNEMONIC_LOOPNE;
    }
}

} // namespace

Decoder::Decoder()
{
    for (int i = 0; i < 6; ++i)
        ZydisDecoderInit(&m_decoders[i], MACHINE_MODES[i], STACK_WIDTHS[i]);
}

bool Decoder::decode(CodeMode mode, std::span<u8 const> bytes, DecodedInstruction& out) const
{
    ZydisDecodedInstruction in;
    ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&m_decoders[static_cast<int>(mode)], bytes.data(), bytes.size(), &in, operands)))
        return false;
    out = {};
    out.mnemonic = in.mnemonic;
    out.length = in.length;
    out.width = static_cast<u8>(in.operand_width / 8);
    out.address_size = static_cast<u8>(in.address_width / 8);
    out.opcode = in.opcode;
    out.condition = in.opcode & 0xF;
    if (in.attributes & ZYDIS_ATTRIB_HAS_LOCK)
        out.prefixes |= DecodedInstruction::LOCK;
    if (in.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
        out.prefixes |= DecodedInstruction::REP;
    if (in.attributes & ZYDIS_ATTRIB_HAS_REPNE)
        out.prefixes |= DecodedInstruction::REPNE;
    out.ends_block = ends_block(in);
    out.operand_count = in.operand_count_visible > 4 ? 4 : in.operand_count_visible;
    for (u8 i = 0; i < out.operand_count; ++i)
        out.operands[i] = convert(operands[i]);
    // String instructions read through a segment that a prefix may override (DS by default);
    // their memory operands are hidden, the source is the one based on rSI.
    for (u8 i = 0; i < in.operand_count; ++i) {
        auto const& op = operands[i];
        if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && (op.mem.base == ZYDIS_REGISTER_RSI || op.mem.base == ZYDIS_REGISTER_ESI || op.mem.base == ZYDIS_REGISTER_SI))
            out.string_segment = segment_of(op.mem.segment);
    }
    return true;
}

} // namespace kasou::emu::cpu
