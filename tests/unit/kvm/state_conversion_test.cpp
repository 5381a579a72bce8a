// Every field of the neutral vCPU state survives a trip through KVM's structs and back, and lands in
// the KVM field of the same meaning.

#include <gtest/gtest.h>

#include "kvm/state_conversion.h"

using namespace kasou;
using namespace kasou::arch::x86_64;
using namespace kasou::kvm;

namespace {

// Distinct values per field, so a field copied into its neighbour is caught.
Segment segment(u8 seed)
{
    return { 0x1000u * seed + 1, 0xFFFFu + seed, static_cast<u16>(seed * 8), static_cast<u8>(seed & 0xF), 1, 3, 1, 1, 0, 1, 1,
        (seed & 1) != 0 };
}

} // namespace

TEST(StateConversion, CpuidEntryRoundTripsAndMapsTheIndexFlag)
{
    CpuidTable table { { 7, 1, true, 1, 2, 3, 4 }, { 0x80000001, 0, false, 5, 6, 7, 8 } };
    auto kvm = to_kvm(table);
    EXPECT_EQ(kvm[0].flags, u32 { KVM_CPUID_FLAG_SIGNIFCANT_INDEX });
    EXPECT_EQ(kvm[1].flags, 0u);
    EXPECT_EQ(kvm[0].function, 7u);
    EXPECT_EQ(kvm[0].index, 1u);
    EXPECT_EQ(kvm[1].edx, 8u);
    EXPECT_EQ(to_neutral(kvm), table);
}

TEST(StateConversion, GeneralRegistersRoundTrip)
{
    GeneralRegisters regs { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18 };
    auto kvm = to_kvm(regs);
    EXPECT_EQ(kvm.rax, 1u);
    EXPECT_EQ(kvm.rsp, 7u);
    EXPECT_EQ(kvm.rbp, 8u);
    EXPECT_EQ(kvm.r15, 16u);
    EXPECT_EQ(kvm.rip, 17u);
    EXPECT_EQ(kvm.rflags, 18u);
    EXPECT_EQ(to_neutral(kvm), regs);
}

TEST(StateConversion, SystemRegistersRoundTrip)
{
    SystemRegisters sregs;
    sregs.cs = segment(1);
    sregs.ds = segment(2);
    sregs.es = segment(3);
    sregs.fs = segment(4);
    sregs.gs = segment(5);
    sregs.ss = segment(6);
    sregs.tr = segment(7);
    sregs.ldt = segment(8);
    sregs.gdt = { 0x5000, 0x27 };
    sregs.idt = { 0x6000, 0xFFF };
    sregs.cr0 = 0x80000011;
    sregs.cr2 = 0xDEAD000;
    sregs.cr3 = 0x9000;
    sregs.cr4 = 0x20;
    sregs.cr8 = 3;
    sregs.efer = 0x500;
    sregs.apic_base = 0xFEE00900;
    sregs.pending_interrupts = { 0, 1u << 3, 0, 1ull << 63 };
    auto kvm = to_kvm(sregs);
    EXPECT_EQ(kvm.tr.selector, 56u);
    EXPECT_EQ(kvm.ldt.base, 0x8001u);
    EXPECT_EQ(kvm.cs.unusable, 1u);
    EXPECT_EQ(kvm.ds.unusable, 0u);
    EXPECT_EQ(kvm.idt.limit, 0xFFFu);
    EXPECT_EQ(kvm.apic_base, 0xFEE00900u);
    EXPECT_EQ(kvm.interrupt_bitmap[1], 1u << 3);
    EXPECT_EQ(to_neutral(kvm), sregs);
}

TEST(StateConversion, FpuRoundTrips)
{
    FpuState fpu;
    for (size_t i = 0; i < fpu.fpr.size(); ++i)
        fpu.fpr[i].fill(static_cast<u8>(i + 1));
    for (size_t i = 0; i < fpu.xmm.size(); ++i)
        fpu.xmm[i].fill(static_cast<u8>(0x40 + i));
    fpu.fcw = 0x37F;
    fpu.fsw = 0x1234;
    fpu.ftwx = 0xAB;
    fpu.last_opcode = 0x7FF;
    fpu.last_ip = 0x1111;
    fpu.last_dp = 0x2222;
    fpu.mxcsr = 0x1F80;
    auto kvm = to_kvm(fpu);
    EXPECT_EQ(kvm.fpr[7][15], 8u);
    EXPECT_EQ(kvm.xmm[15][0], 0x4Fu);
    EXPECT_EQ(kvm.mxcsr, 0x1F80u);
    EXPECT_EQ(to_neutral(kvm), fpu);
}

TEST(StateConversion, XcrsRoundTripAndTooManyAreRefused)
{
    std::vector<Xcr> xcrs { { 0, 0x7 }, { 1, 0x3 } };
    auto kvm = to_kvm(xcrs);
    ASSERT_TRUE(kvm);
    EXPECT_EQ(kvm->nr_xcrs, 2u);
    EXPECT_EQ(kvm->xcrs[1].xcr, 1u);
    EXPECT_EQ(to_neutral(*kvm), xcrs);
    EXPECT_FALSE(to_kvm(std::vector<Xcr>(KVM_MAX_XCRS + 1)));
}

TEST(StateConversion, DebugRegistersRoundTrip)
{
    DebugRegisters debug { { 1, 2, 3, 4 }, 0xFFFF0FF0, 0x400 };
    auto kvm = to_kvm(debug);
    EXPECT_EQ(kvm.db[3], 4u);
    EXPECT_EQ(kvm.dr6, 0xFFFF0FF0u);
    EXPECT_EQ(kvm.dr7, 0x400u);
    EXPECT_EQ(to_neutral(kvm), debug);
}

TEST(StateConversion, LapicRoundTrips)
{
    LapicRegisters lapic;
    for (size_t i = 0; i < lapic.size(); ++i)
        lapic[i] = static_cast<u8>(i * 7);
    auto kvm = to_kvm(lapic);
    EXPECT_EQ(static_cast<u8>(kvm.regs[0x3FF]), static_cast<u8>(0x3FF * 7));
    EXPECT_EQ(to_neutral(kvm), lapic);
}

TEST(StateConversion, PendingEventsRoundTripWithEveryOptionalPart)
{
    PendingEvents events;
    events.exception = { true, true, 14, true, 0x2, true, 0xDEAD000 };
    events.interrupt = { true, 0x30, true, 1 };
    events.nmi = { true, true, true };
    events.sipi_vector = 0x8;
    events.smi = { true, true, true, true };
    events.triple_fault_pending = true;
    auto kvm = to_kvm(events);
    EXPECT_EQ(kvm.exception.nr, 14u);
    EXPECT_EQ(kvm.exception.error_code, 2u);
    EXPECT_EQ(kvm.exception_payload, 0xDEAD000u);
    EXPECT_EQ(kvm.interrupt.nr, 0x30u);
    EXPECT_EQ(kvm.sipi_vector, 8u);
    EXPECT_EQ(kvm.flags,
        u32 { KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_SIPI_VECTOR
            | KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT });
    EXPECT_EQ(to_neutral(kvm), events);
}

TEST(StateConversion, PendingEventsWithoutOptionalPartsAskForNoCapability)
{
    PendingEvents events;
    events.nmi.masked = true;
    events.interrupt.shadow = 2;
    auto kvm = to_kvm(events);
    EXPECT_EQ(kvm.flags, u32 { KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM });
    EXPECT_EQ(to_neutral(kvm), events);
}

TEST(StateConversion, MpStatesRoundTripAndUnknownOnesAreRefused)
{
    for (auto state : { MpState::Runnable, MpState::Uninitialized, MpState::InitReceived, MpState::Halted, MpState::SipiReceived }) {
        auto back = to_neutral(to_kvm(state));
        ASSERT_TRUE(back);
        EXPECT_EQ(*back, state);
    }
    EXPECT_EQ(to_kvm(MpState::Halted).mp_state, u32 { KVM_MP_STATE_HALTED });
    auto refused = to_neutral(kvm_mp_state { KVM_MP_STATE_AP_RESET_HOLD });
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("multiprocessing state"), std::string::npos);
}

TEST(StateConversion, InKernelIrqchipStatesRoundTripFieldByField)
{
    engine::PicChipState pic { 1, 2, 3, 4, 5, 0x20, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    EXPECT_EQ(to_neutral(to_kvm(pic)), pic);
    EXPECT_EQ(to_kvm(pic).irq_base, 0x20);
    EXPECT_EQ(to_kvm(pic).elcr_mask, 16);

    engine::IoapicChipState ioapic { 0xfec00000, 0x12, 3, 0x40, {} };
    for (u64 pin = 0; pin < ioapic.redirection.size(); ++pin)
        ioapic.redirection[pin] = pin << 56 | 0x30 | pin;
    EXPECT_EQ(to_neutral(to_kvm(ioapic)), ioapic);
    EXPECT_EQ(to_kvm(ioapic).redirtbl[5].fields.vector, 0x35);

    engine::PitCounterState pit { 0x10000, 0x1234, 1, 1, 0x34, 2, 3, 0x56, 3, 2, 0, 1, 12'345 };
    // The load time is kept as an age, so it moves with the clock it is written at.
    auto kvm = to_kvm(pit, 1'000'000);
    EXPECT_EQ(kvm.count_load_time, 1'000'000 - 12'345);
    EXPECT_EQ(to_neutral(kvm, 1'000'000), pit);
    auto later = to_neutral(kvm, 1'500'000);
    EXPECT_EQ(later.load_age_ns, 500'000 + 12'345);
}
