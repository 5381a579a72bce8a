#pragma once

#include "base/types.h"

namespace kasou::emu::cpu {

// 128-bit integers for wide products, dividends and double shifts (a GCC / Clang extension).
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

// RFLAGS bits (Intel SDM vol. 1, 3.4.3).
namespace rflags {
constexpr u64 CF = 1u << 0;
constexpr u64 RESERVED1 = 1u << 1;
constexpr u64 PF = 1u << 2;
constexpr u64 AF = 1u << 4;
constexpr u64 ZF = 1u << 6;
constexpr u64 SF = 1u << 7;
constexpr u64 TF = 1u << 8;
constexpr u64 IF = 1u << 9;
constexpr u64 DF = 1u << 10;
constexpr u64 OF = 1u << 11;
constexpr u64 IOPL = 3u << 12;
constexpr u64 NT = 1u << 14;
constexpr u64 RF = 1u << 16;
constexpr u64 VM = 1u << 17;
constexpr u64 AC = 1u << 18;
constexpr u64 VIF = 1u << 19;
constexpr u64 VIP = 1u << 20;
constexpr u64 ID = 1u << 21;
// The six status flags the arithmetic instructions write.
constexpr u64 STATUS = CF | PF | AF | ZF | SF | OF;
// What POPF / IRET / WRMSR-style writers may change at all.
constexpr u64 WRITABLE = STATUS | TF | IF | DF | IOPL | NT | RF | AC | VIF | VIP | ID;
} // namespace rflags

// The arithmetic status flags kept lazily: an instruction records its operation, operands and
// result, and the six flags are computed only when something reads them (Jcc, SETcc, PUSHF, ...).
// Most results are never looked at, since the next instruction overwrites them. Invariant: when
// op is Op::Materialized, `flags` holds the status flags; otherwise they follow from op, the
// operand size and dst / src / result (and `carry_in` for INC / DEC, which keep CF).
class LazyFlags {
public:
    enum class Op : u8 {
        Materialized,
        Add,   // result = dst + src (+ carry)
        Sub,   // result = dst - src (- borrow); CMP and NEG (dst = 0) too
        Logic, // AND / OR / XOR / TEST: CF = OF = AF = 0
        Inc,   // Add with src = 1, CF kept
        Dec,   // Sub with src = 1, CF kept
    };

    void set(Op op, u8 size, u64 dst, u64 src, u64 result)
    {
        m_op = op;
        m_size = size;
        m_dst = dst;
        m_src = src;
        m_result = result;
    }
    // INC / DEC: CF stays what it was before.
    void set_keeping_carry(Op op, u8 size, u64 dst, u64 result);
    // The status flags given whole (shifts, multiplies, POPF, ...): only bits in `mask` change.
    void set_materialized(u64 mask, u64 values);

    // The six status flags as RFLAGS bits.
    u64 status() const;
    bool carry() const;
    bool zero() const;
    // Whether Jcc / SETcc / CMOVcc condition `condition` holds; after CMP, SUB, TEST and the logic
    // operations without computing the other flags.
    bool condition(u8 condition) const;

private:
    Op m_op { Op::Materialized };
    u8 m_size { 8 };
    u64 m_dst { 0 };
    u64 m_src { 0 };
    u64 m_result { 0 };
    u64 m_flags { 0 }; // Materialized: the flags; Inc / Dec: CF only
};

// Condition codes of Jcc / SETcc / CMOVcc, the low nibble of their opcode (Intel SDM vol. 2, B.1.4.7).
bool condition_holds(u8 condition, u64 status_flags);

// Parity of the low byte: PF is set when it has an even number of one bits.
inline bool even_parity(u64 value)
{
    return !__builtin_parity(static_cast<unsigned>(value & 0xFF));
}

inline u64 size_mask(u8 size)
{
    return size == 8 ? ~u64 { 0 } : (u64 { 1 } << (size * 8)) - 1;
}

// The low `size` bytes of `value` as a signed 64-bit number.
inline u64 sign_extend(u64 value, u8 size)
{
    u8 const shift = static_cast<u8>(64 - size * 8);
    return static_cast<u64>(static_cast<i64>(value << shift) >> shift);
}

inline u64 sign_bit(u8 size)
{
    return u64 { 1 } << (size * 8 - 1);
}

} // namespace kasou::emu::cpu
