#pragma once

#include <span>

#include <Zydis/Zydis.h>

#include "emu/cpu/decoded_instruction.h"

namespace kasou::emu::cpu {

// The machine mode an instruction is decoded in.
enum class CodeMode : u8 { Real16, Protected16, Protected32, Compat16, Compat32, Long64 };

// Turns instruction bytes into DecodedInstruction with Zydis: one decoder per mode, made once.
// Stateless after construction; one per vCPU.
class Decoder {
public:
    Decoder();
    // False when the bytes are no valid instruction of `mode` (the caller raises #UD). `bytes`
    // holds up to 15 bytes; fewer are fine when the instruction is shorter.
    bool decode(CodeMode mode, std::span<u8 const> bytes, DecodedInstruction& out) const;

private:
    ZydisDecoder m_decoders[6];
};

} // namespace kasou::emu::cpu
