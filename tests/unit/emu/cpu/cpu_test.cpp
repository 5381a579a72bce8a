// The software CPU on small hand-assembled sequences: results, exceptions and their error codes,
// paging faults and accessed / dirty bits, exits, string instructions, atomics, privilege changes.

#include "cpu_fixture.h"

namespace kasou::emu::cpu::test {
namespace {

constexpr u8 RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RSI = 6, RDI = 7;

using Cpu = CpuFixture;

TEST_F(Cpu, CallAddReturn)
{
    load({ 0xe8, 0x01, 0x00, 0x00, 0x00, 0xf4, 0x48, 0x83, 0xc0, 0x01, 0xc3 }); // call f; hlt; f: add rax, 1; ret
    reg(RAX) = 41;
    auto exit = run();
    EXPECT_EQ(exit.kind, CpuExit::Kind::Halt);
    EXPECT_EQ(reg(RAX), 42u);
    EXPECT_EQ(state().rip, CODE + 6);
    EXPECT_EQ(reg(RSP), STACK);
}

TEST_F(Cpu, ConditionalMoveAndSet)
{
    load({ 0x48, 0x39, 0xd8, 0x48, 0x0f, 0x4c, 0xca, 0x40, 0x0f, 0x9f, 0xc6, 0xf4 }); // cmp rax, rbx; cmovl rcx, rdx; setg sil
    reg(RAX) = static_cast<u64>(-5);
    reg(RBX) = 3;
    reg(RDX) = 77;
    reg(RSI) = 0xFF00;
    run();
    EXPECT_EQ(reg(RCX), 77u);
    EXPECT_EQ(reg(RSI), 0xFF00u);
}

TEST_F(Cpu, MultiplyAndBitScans)
{
    load({ 0x48, 0x6b, 0xc3, 0xfd, 0x48, 0xf7, 0xe1, 0xf4 }); // imul rax, rbx, -3; mul rcx
    reg(RBX) = 0x5555'5555'5555'5555;
    reg(RCX) = 4;
    run();
    u128 product = static_cast<u128>(0x5555'5555'5555'5555ull * static_cast<u64>(-3)) * 4;
    EXPECT_EQ(reg(RAX), static_cast<u64>(product));
    EXPECT_EQ(reg(RDX), static_cast<u64>(product >> 64));

    load({ 0x48, 0x0f, 0xbc, 0xc3, 0x48, 0x0f, 0xbd, 0xcb, 0xf3, 0x48, 0x0f, 0xb8, 0xd3, 0xf3, 0x48, 0x0f, 0xbd, 0xf3, 0xf3, 0x48, 0x0f,
        0xbc, 0xfb, 0xf4 }); // bsf rax, rbx; bsr rcx, rbx; popcnt rdx, rbx; lzcnt rsi, rbx; tzcnt rdi, rbx
    state().rip = CODE;
    state().halted = false;
    reg(RBX) = 0x0000'0100'0000'0100;
    m_cpu->state_changed();
    run();
    EXPECT_EQ(reg(RAX), 8u);
    EXPECT_EQ(reg(RCX), 40u);
    EXPECT_EQ(reg(RDX), 2u);
    EXPECT_EQ(reg(RSI), 23u);
    EXPECT_EQ(reg(RDI), 8u);
}

TEST_F(Cpu, DivideByZeroRaisesDivideErrorAtTheInstruction)
{
    load({ 0x48, 0xf7, 0xf1, 0xf4 }); // div rcx
    reg(RAX) = 10;
    reg(RCX) = 0;
    run();
    EXPECT_EQ(halted_vector(), 0);
    EXPECT_EQ(peek<u64>(reg(RSP)), CODE);           // RIP of the faulting instruction
    EXPECT_EQ(peek<u64>(reg(RSP) + 8), KERNEL_CS);  // CS
    EXPECT_EQ(reg(RAX), 10u);                       // nothing written
}

TEST_F(Cpu, SignedDivideOverflowRaisesDivideError)
{
    load({ 0x48, 0xf7, 0xf9, 0xf4 }); // idiv rcx
    reg(RAX) = 0;
    reg(RDX) = 0x8000'0000'0000'0000; // a dividend far beyond 64 bits of quotient
    reg(RCX) = 1;
    run();
    EXPECT_EQ(halted_vector(), 0);
}

TEST_F(Cpu, UnimplementedInstructionRaisesInvalidOpcode)
{
    load({ 0xd9, 0xc1, 0xf4 }); // fld st(1): no x87
    run();
    EXPECT_EQ(halted_vector(), 6);
    EXPECT_EQ(peek<u64>(reg(RSP)), CODE);
}

TEST_F(Cpu, PageFaultHasCr2AndErrorCode)
{
    load({ 0x48, 0x8b, 0x03, 0xf4 }); // mov rax, [rbx]
    unmap(DATA);
    reg(RBX) = DATA + 0x18;
    run();
    EXPECT_EQ(halted_vector(), 14);
    EXPECT_EQ(state().cr2, DATA + 0x18);
    EXPECT_EQ(peek<u64>(reg(RSP)), 0u);        // error code: not present, read, supervisor
    EXPECT_EQ(peek<u64>(reg(RSP) + 8), CODE); // then RIP
}

TEST_F(Cpu, WriteToReadOnlyPageFaultsWithWriteProtection)
{
    load({ 0x48, 0xc7, 0x03, 0x07, 0x00, 0x00, 0x00, 0xf4 }); // mov qword [rbx], 7
    set_pte(DATA, DATA | 0x5);                                  // present, user, read-only
    reg(RBX) = DATA;
    run();
    EXPECT_EQ(halted_vector(), 14);
    EXPECT_EQ(peek<u64>(reg(RSP)), 0x3u); // present | write
    EXPECT_EQ(peek<u64>(DATA), 0u);
}

TEST_F(Cpu, UserAccessToSupervisorPageFaults)
{
    load({ 0x48, 0x8b, 0x03, 0xf4 }); // mov rax, [rbx] at CPL3
    reg(RBX) = 0x200000;               // the supervisor-only 2 MiB page
    to_user_mode();
    run();
    EXPECT_EQ(halted_vector(), 14);
    EXPECT_EQ(peek<u64>(reg(RSP)), 0x5u); // present | user
    EXPECT_EQ(reg(RSP), KERNEL_STACK - 6 * 8); // switched to the TSS stack: SS, RSP, RFLAGS, CS, RIP, error
    EXPECT_EQ(peek<u64>(reg(RSP) + 16), USER_CS);
    EXPECT_EQ(peek<u64>(reg(RSP) + 40), USER_DS);
}

TEST_F(Cpu, NoExecuteFaultsOnFetch)
{
    set_pte(DATA, DATA | 7 | (u64 { 1 } << 63));
    poke<u8>(DATA, 0xF4);
    state().rip = DATA;
    run();
    EXPECT_EQ(halted_vector(), 14);
    EXPECT_EQ(peek<u64>(reg(RSP)), 0x11u); // present | instruction fetch
    EXPECT_EQ(state().cr2, DATA);
}

TEST_F(Cpu, AccessedAndDirtyBits)
{
    load({ 0x48, 0x8b, 0x03, 0x48, 0x89, 0x01, 0xf4 }); // mov rax, [rbx]; mov [rcx], rax
    set_pte(DATA, DATA | 7);
    set_pte(DATA + 0x1000, (DATA + 0x1000) | 7);
    reg(RBX) = DATA;
    reg(RCX) = DATA + 0x1000;
    run();
    EXPECT_EQ(pte(DATA) & 0x60, 0x20u);          // accessed, not dirty
    EXPECT_EQ(pte(DATA + 0x1000) & 0x60, 0x60u); // accessed and dirty
    EXPECT_NE(peek<u64>(PD) & 0x20, 0u);         // accessed on the directory entry too
}

TEST_F(Cpu, PortInputExitsAndTheInstructionTakesTheAnswer)
{
    load({ 0xec, 0xee, 0xf4 }); // in al, dx; out dx, al
    reg(RDX) = 0x3FD;
    reg(RAX) = 0x1100;
    auto exit = run();
    ASSERT_EQ(exit.kind, CpuExit::Kind::PortIo);
    EXPECT_FALSE(exit.write);
    EXPECT_EQ(exit.address, 0x3FDu);
    EXPECT_EQ(exit.size, 1);
    EXPECT_EQ(state().rip, CODE); // not retired yet
    m_cpu->complete_read(0x60);
    exit = run();
    ASSERT_EQ(exit.kind, CpuExit::Kind::PortIo);
    EXPECT_TRUE(exit.write);
    EXPECT_EQ(exit.data, 0x60u);
    EXPECT_EQ(reg(RAX), 0x1160u);
    EXPECT_EQ(state().rip, CODE + 2);
}

TEST_F(Cpu, MmioBecomesExits)
{
    load({ 0x89, 0x03, 0x8b, 0x0b, 0xf4 }); // mov [rbx], eax; mov ecx, [rbx]
    set_pte(DATA, 0xFEC0'0000 | 7);          // a page mapped to no RAM
    reg(RBX) = DATA + 0x10;
    reg(RAX) = 0xABCD;
    auto exit = run();
    ASSERT_EQ(exit.kind, CpuExit::Kind::Mmio);
    EXPECT_TRUE(exit.write);
    EXPECT_EQ(exit.address, 0xFEC0'0010u);
    EXPECT_EQ(exit.size, 4);
    EXPECT_EQ(exit.data, 0xABCDu);
    exit = run();
    ASSERT_EQ(exit.kind, CpuExit::Kind::Mmio);
    EXPECT_FALSE(exit.write);
    m_cpu->complete_read(0x1234);
    run();
    EXPECT_EQ(reg(RCX), 0x1234u);
}

TEST_F(Cpu, RepeatedStringInstructions)
{
    load({ 0xf3, 0xa4, 0xf4 }); // rep movsb
    for (u64 i = 0; i < 100; ++i)
        poke<u8>(DATA + i, static_cast<u8>(i + 1));
    reg(RSI) = DATA;
    reg(RDI) = DATA + 0x1000 - 50; // across a page boundary
    reg(RCX) = 100;
    run();
    EXPECT_EQ(reg(RCX), 0u);
    EXPECT_EQ(peek<u8>(DATA + 0x1000 - 50), 1);
    EXPECT_EQ(peek<u8>(DATA + 0x1000 + 49), 100);

    load({ 0xf2, 0xae, 0xf4 }); // repne scasb
    state().rip = CODE;
    state().halted = false;
    m_cpu->state_changed();
    reg(RDI) = DATA;
    reg(RAX) = 10;
    reg(RCX) = 100;
    run();
    EXPECT_EQ(reg(RDI), DATA + 10);
    EXPECT_EQ(reg(RCX), 90u);
}

TEST_F(Cpu, RepeatedStoreFaultsPreciselyMidway)
{
    load({ 0xf3, 0x48, 0xab, 0xf4 }); // rep stosq
    unmap(DATA + 0x1000);
    reg(RDI) = DATA + 0x1000 - 16;
    reg(RCX) = 8;
    reg(RAX) = 0x1111;
    run();
    EXPECT_EQ(halted_vector(), 14);
    EXPECT_EQ(state().cr2, DATA + 0x1000);
    EXPECT_EQ(peek<u64>(reg(RSP)), 0x2u);   // not present, write
    EXPECT_EQ(peek<u64>(DATA + 0x1000 - 8), 0x1111u);
    // The registers were left where the faulting iteration started.
    EXPECT_EQ(peek<u64>(reg(RSP) + 8), CODE);
}

TEST_F(Cpu, LockedExchangeAndCompare)
{
    load({ 0xf0, 0x48, 0x0f, 0xc1, 0x03, 0xf0, 0x48, 0x0f, 0xb1, 0x4b, 0x08, 0xf4 }); // lock xadd [rbx], rax; lock cmpxchg [rbx+8], rcx
    poke<u64>(DATA, 100);
    poke<u64>(DATA + 8, 100);
    reg(RBX) = DATA;
    reg(RAX) = 5;
    reg(RCX) = 999;
    run();
    EXPECT_EQ(peek<u64>(DATA), 105u);
    EXPECT_EQ(peek<u64>(DATA + 8), 999u); // RAX held the old value 100, so the exchange happened
    EXPECT_TRUE(state().flags.zero());
}

TEST_F(Cpu, BitTestAndSetOnMemory)
{
    load({ 0x48, 0x0f, 0xab, 0x0b, 0x0f, 0x92, 0xc0, 0xf4 }); // bts [rbx], rcx; setc al
    reg(RBX) = DATA;
    reg(RCX) = 70; // bit 6 of the second quadword
    run();
    EXPECT_EQ(peek<u64>(DATA + 8), 0x40u);
    EXPECT_EQ(reg(RAX) & 0xFF, 0u);
}

TEST_F(Cpu, SelfModifyingCodeRunsTheNewBytes)
{
    load({ 0xc6, 0x05, 0x00, 0x00, 0x00, 0x00, 0x90, 0xf4, 0xf4 }); // mov byte [rip], 0x90 (the next hlt becomes nop)
    run();
    EXPECT_EQ(state().rip, CODE + 9);
}

TEST_F(Cpu, SyscallAndSysretChangePrivilege)
{
    load({ 0x0f, 0x05, 0xf4 }); // syscall
    load({ 0x48, 0x0f, 0x07 }, 0x5000); // sysretq
    state().star = (u64 { 0x13 } << 48) | (u64 { KERNEL_CS } << 32);
    state().lstar = 0x5000;
    state().sfmask = rflags::IF;
    to_user_mode();
    state().set_full_rflags(rflags::RESERVED1 | rflags::IF);
    run(1);
    EXPECT_EQ(state().rip, 0x5000u);
    EXPECT_EQ(state().cpl(), 0);
    EXPECT_EQ(reg(RCX), CODE + 2);
    EXPECT_FALSE(state().full_rflags() & rflags::IF);
    run(1);
    EXPECT_EQ(state().rip, CODE + 2);
    EXPECT_EQ(state().cpl(), 3);
    EXPECT_EQ(state().segments[1].selector, 0x23);
    EXPECT_TRUE(state().full_rflags() & rflags::IF);
    run();
    EXPECT_EQ(halted_vector(), 13); // HLT at CPL3
}

TEST_F(Cpu, SoftwareInterruptAndIretq)
{
    load({ 0xcd, 0x80, 0xf4 }); // int 0x80
    load({ 0x48, 0xcf }, HANDLERS + 0x80 * 16); // the 0x80 stub: iretq
    to_user_mode();
    run(1);
    EXPECT_EQ(state().cpl(), 0);
    EXPECT_EQ(reg(RSP), KERNEL_STACK - 40);
    run(1);
    EXPECT_EQ(state().cpl(), 3);
    EXPECT_EQ(state().rip, CODE + 2);
    EXPECT_EQ(reg(RSP), STACK);
}

TEST_F(Cpu, InterruptGateBelowCplIsGeneralProtection)
{
    load({ 0xcd, 0x21, 0xf4 }); // int 0x21: a DPL 0 gate
    to_user_mode();
    run();
    EXPECT_EQ(halted_vector(), 13);
    EXPECT_EQ(peek<u64>(reg(RSP)), 0x21u * 8 + 2); // IDT error code
}

TEST_F(Cpu, TripleFaultShutsDown)
{
    state().idt.limit = 0; // every delivery fails
    load({ 0x0f, 0x0b }); // ud2
    auto exit = run();
    EXPECT_EQ(exit.kind, CpuExit::Kind::Shutdown);
}

TEST_F(Cpu, ExternalInterruptIsDeliveredWhenEnabled)
{
    load({ 0xfb, 0x90, 0xeb, 0xfe }); // sti; nop; jmp $
    EXPECT_FALSE(m_cpu->interrupts_deliverable());
    run(1);
    EXPECT_FALSE(m_cpu->interrupts_deliverable()); // the STI shadow
    run(1);
    EXPECT_TRUE(m_cpu->interrupts_deliverable());
    m_cpu->deliver_external_interrupt(0x40);
    run(1);
    EXPECT_EQ(halted_vector(), 0x40);
    EXPECT_EQ(peek<u64>(reg(RSP)), CODE + 2);
}

TEST_F(Cpu, RealModeAndTheSwitchToProtectedMode)
{
    // Real mode at 0000:1000: mov ax, 0x1234; mov [0x2000], ax; hlt
    auto& s = state();
    for (auto& segment : s.segments) {
        segment = {};
        segment.limit = 0xFFFF;
        segment.present = 1;
        segment.s = 1;
        segment.type = 3;
    }
    s.segments[1].type = 0xB;
    s.cr0 = cr0::ET;
    s.efer = 0;
    s.cr4 = 0;
    s.rip = CODE;
    m_cpu->state_changed();
    load({ 0xb8, 0x34, 0x12, 0xa3, 0x00, 0x20, 0xf4 });
    run();
    EXPECT_EQ(peek<u16>(0x2000), 0x1234);
    EXPECT_EQ(s.rip, CODE + 7);
}

} // namespace
} // namespace kasou::emu::cpu::test
