#pragma once

#include <Zydis/Zydis.h>

#include "base/types.h"

namespace kasou::emu::cpu {

// Register numbers of the decoded form: 0-15 are RAX..R15 in encoding order.
constexpr u8 NO_REGISTER = 0xFF;
constexpr u8 RIP_REGISTER = 16; // a RIP-relative memory operand's base

// Segment registers in encoding order.
enum class SegmentIndex : u8 { ES, CS, SS, DS, FS, GS };

// One operand of a decoded instruction, in kasou's terms: Zydis finds the fields, kasou gives
// them meaning.
struct Operand {
    enum class Kind : u8 { None, Gpr, Memory, Immediate, Relative, FarPointer, Segment, Control, Debug, Other };
    Kind kind { Kind::None };
    u8 size { 0 };          // bytes
    u8 reg { NO_REGISTER }; // Gpr, Segment, Control, Debug: the register number
    bool high_byte { false }; // Gpr: AH, CH, DH or BH
    // Memory: segment:[base + index * scale + displacement]
    SegmentIndex segment { SegmentIndex::DS };
    u8 base { NO_REGISTER };
    u8 index { NO_REGISTER };
    u8 scale { 0 };
    u16 far_selector { 0 }; // FarPointer
    i64 value { 0 };        // Memory: displacement; Immediate / Relative / FarPointer: the value
};

// One instruction decoded once and cached. `width` is the operand size in bytes, `address_size`
// the address size; `condition` the low nibble of the opcode (Jcc / SETcc / CMOVcc).
struct DecodedInstruction {
    static constexpr u8 LOCK = 1, REP = 2, REPNE = 4;

    ZydisMnemonic mnemonic { ZYDIS_MNEMONIC_INVALID };
    u8 length { 0 };
    u8 width { 0 };
    u8 address_size { 0 };
    u8 prefixes { 0 };
    u8 condition { 0 };
    u8 opcode { 0 };
    u8 operand_count { 0 }; // the visible operands
    SegmentIndex string_segment { SegmentIndex::DS }; // the source segment of string instructions
    bool ends_block { false };
    Operand operands[4];
};

} // namespace kasou::emu::cpu
