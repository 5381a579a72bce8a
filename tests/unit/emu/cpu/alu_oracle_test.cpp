// ALU results and flags checked against the host CPU running the same instruction natively.

#include <random>

#include "cpu_fixture.h"

namespace kasou::emu::cpu::test {
namespace {

struct HostResult {
    u64 value;
    u64 flags;
};

// Runs `instruction` on the host with RAX = a, RBX = b (RCX = b for shifts), RFLAGS = flags_in.
// The red zone is stepped over since the sequence pushes.
#define HOST_OP(name, text)                                                                                   \
    HostResult name(u64 a, u64 b, u64 flags_in)                                                               \
    {                                                                                                         \
        u64 flags_out;                                                                                        \
        asm volatile("sub $128, %%rsp\n push %[fin]\n popfq\n " text "\n pushfq\n pop %[fout]\n add $128, %%rsp" \
                     : "+a"(a), [fout] "=&r"(flags_out)                                                       \
                     : "b"(b), "c"(b), [fin] "r"(flags_in)                                                    \
                     : "cc", "memory");                                                                       \
        return { a, flags_out };                                                                              \
    }

HOST_OP(host_add, "add %%rbx, %%rax")
HOST_OP(host_or, "or %%rbx, %%rax")
HOST_OP(host_adc, "adc %%rbx, %%rax")
HOST_OP(host_sbb, "sbb %%rbx, %%rax")
HOST_OP(host_and, "and %%rbx, %%rax")
HOST_OP(host_sub, "sub %%rbx, %%rax")
HOST_OP(host_xor, "xor %%rbx, %%rax")
HOST_OP(host_cmp, "cmp %%rbx, %%rax")
HOST_OP(host_add8, "add %%bl, %%al")
HOST_OP(host_sub8, "sub %%bl, %%al")
HOST_OP(host_adc8, "adc %%bl, %%al")
HOST_OP(host_inc, "inc %%rax")
HOST_OP(host_dec, "dec %%rax")
HOST_OP(host_neg, "neg %%rax")
HOST_OP(host_inc16, "inc %%ax")
HOST_OP(host_shl, "shl %%cl, %%rax")
HOST_OP(host_shr, "shr %%cl, %%rax")
HOST_OP(host_sar, "sar %%cl, %%rax")
HOST_OP(host_rol, "rol %%cl, %%rax")
HOST_OP(host_ror, "ror %%cl, %%rax")
HOST_OP(host_shl8, "shl %%cl, %%al")

struct Case {
    char const* name;
    std::vector<u8> code;
    HostResult (*host)(u64, u64, u64);
    u64 defined_flags;
    bool shift;
};

constexpr u64 ALL = rflags::STATUS;
constexpr u64 LOGIC = rflags::STATUS & ~rflags::AF; // AF is undefined after logic operations

class AluOracle : public CpuFixture { };

TEST_F(AluOracle, MatchesTheHostCpu)
{
    std::vector<Case> const cases = {
        { "add", { 0x48, 0x01, 0xd8 }, host_add, ALL, false },
        { "or", { 0x48, 0x09, 0xd8 }, host_or, LOGIC, false },
        { "adc", { 0x48, 0x11, 0xd8 }, host_adc, ALL, false },
        { "sbb", { 0x48, 0x19, 0xd8 }, host_sbb, ALL, false },
        { "and", { 0x48, 0x21, 0xd8 }, host_and, LOGIC, false },
        { "sub", { 0x48, 0x29, 0xd8 }, host_sub, ALL, false },
        { "xor", { 0x48, 0x31, 0xd8 }, host_xor, LOGIC, false },
        { "cmp", { 0x48, 0x39, 0xd8 }, host_cmp, ALL, false },
        { "add8", { 0x00, 0xd8 }, host_add8, ALL, false },
        { "sub8", { 0x28, 0xd8 }, host_sub8, ALL, false },
        { "adc8", { 0x10, 0xd8 }, host_adc8, ALL, false },
        { "inc", { 0x48, 0xff, 0xc0 }, host_inc, ALL, false },
        { "dec", { 0x48, 0xff, 0xc8 }, host_dec, ALL, false },
        { "neg", { 0x48, 0xf7, 0xd8 }, host_neg, ALL, false },
        { "inc16", { 0x66, 0xff, 0xc0 }, host_inc16, ALL, false },
        // Shifts: CF, ZF, SF, PF always; OF only for a count of 1 (checked separately below).
        { "shl", { 0x48, 0xd3, 0xe0 }, host_shl, rflags::CF | rflags::ZF | rflags::SF | rflags::PF, true },
        { "shr", { 0x48, 0xd3, 0xe8 }, host_shr, rflags::CF | rflags::ZF | rflags::SF | rflags::PF, true },
        { "sar", { 0x48, 0xd3, 0xf8 }, host_sar, rflags::CF | rflags::ZF | rflags::SF | rflags::PF, true },
        { "rol", { 0x48, 0xd3, 0xc0 }, host_rol, rflags::CF, true },
        { "ror", { 0x48, 0xd3, 0xc8 }, host_ror, rflags::CF, true },
        { "shl8", { 0xd2, 0xe0 }, host_shl8, rflags::CF | rflags::ZF | rflags::SF | rflags::PF, true },
    };
    std::mt19937_64 random(12345);
    std::vector<u64> const edges = { 0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF'FFFF, 0x8000'0000, 0xFFFF'FFFF,
        0x7FFF'FFFF'FFFF'FFFF, 0x8000'0000'0000'0000, ~u64 { 0 }, 0x0F0F'0F0F'0F0F'0F0F };
    for (auto const& c : cases) {
        for (int trial = 0; trial < 400; ++trial) {
            u64 a = trial < 256 ? edges[trial % edges.size()] : random();
            u64 b = trial < 256 ? edges[(trial / edges.size()) % edges.size()] : random();
            if (c.shift)
                b = trial < 256 ? trial % 70 : random() % 70;
            u64 flags_in = rflags::RESERVED1 | ((trial & 1) ? rflags::CF : 0) | ((trial & 2) ? rflags::ZF | rflags::OF : 0);
            if (c.shift && (b & 63) == 0)
                continue;

            std::vector<u8> code = c.code;
            code.push_back(0xF4);
            load(code);
            state().rip = CODE;
            state().halted = false;
            reg(0) = a;
            reg(3) = b;
            reg(1) = b;
            state().set_full_rflags(flags_in);
            m_cpu->state_changed();
            run();

            HostResult expected = c.host(a, b, flags_in);
            u64 mask = c.defined_flags;
            if (c.shift && (b & 63) == 1)
                mask |= rflags::OF;
            ASSERT_EQ(reg(0), expected.value) << c.name << " a=" << std::hex << a << " b=" << b;
            ASSERT_EQ(state().full_rflags() & mask, expected.flags & mask)
                << c.name << " a=" << std::hex << a << " b=" << b << " flags_in=" << flags_in;
        }
    }
}

} // namespace
} // namespace kasou::emu::cpu::test

namespace kasou::emu::cpu::test {
namespace {

// The fast condition paths after CMP and TEST agree with the conditions of the full flags.
TEST(LazyFlags, ConditionsAgreeWithTheMaterializedFlags)
{
    std::mt19937_64 random(7);
    for (int trial = 0; trial < 20000; ++trial) {
        u8 const size = u8 { 1 } << (trial % 4);
        u64 const mask = size_mask(size);
        u64 dst = random(), src = random();
        if (trial % 5 == 0)
            src = dst;
        if (trial % 7 == 0)
            dst ^= sign_bit(size);
        LazyFlags flags;
        if (trial % 2)
            flags.set(LazyFlags::Op::Sub, size, dst & mask, src & mask, (dst - src) & mask);
        else
            flags.set(LazyFlags::Op::Logic, size, dst & mask, src & mask, dst & src & mask);
        for (u8 condition = 0; condition < 16; ++condition)
            ASSERT_EQ(flags.condition(condition), condition_holds(condition, flags.status()))
                << "condition " << int(condition) << " size " << int(size) << std::hex << " dst " << dst << " src " << src;
    }
}

} // namespace
} // namespace kasou::emu::cpu::test
