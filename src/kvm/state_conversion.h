#pragma once

#include <vector>

#include <linux/kvm.h>

#include "arch/x86_64/cpu_state.h"
#include "base/error.h"
#include "engine/irqchip_state.h"

// Conversions between KVM's x86 vCPU structs and the engine-neutral state of arch/x86_64/cpu_state.h.
// Every field of a neutral value survives to_kvm followed by to_neutral; KVM fields kasou does not
// model (padding, reserved words, obsolete CPUID flags) are zero in what to_kvm returns.
namespace kasou::kvm {

arch::x86_64::CpuidEntry to_neutral(kvm_cpuid_entry2 const&);
kvm_cpuid_entry2 to_kvm(arch::x86_64::CpuidEntry const&);
arch::x86_64::CpuidTable to_neutral(std::vector<kvm_cpuid_entry2> const&);
std::vector<kvm_cpuid_entry2> to_kvm(arch::x86_64::CpuidTable const&);

arch::x86_64::GeneralRegisters to_neutral(kvm_regs const&);
kvm_regs to_kvm(arch::x86_64::GeneralRegisters const&);

arch::x86_64::Segment to_neutral(kvm_segment const&);
kvm_segment to_kvm(arch::x86_64::Segment const&);

arch::x86_64::SystemRegisters to_neutral(kvm_sregs const&);
kvm_sregs to_kvm(arch::x86_64::SystemRegisters const&);

arch::x86_64::FpuState to_neutral(kvm_fpu const&);
kvm_fpu to_kvm(arch::x86_64::FpuState const&);

std::vector<arch::x86_64::Xcr> to_neutral(kvm_xcrs const&);
// Fails when there are more XCRs than KVM's structure holds.
ErrorOr<kvm_xcrs> to_kvm(std::vector<arch::x86_64::Xcr> const&);

arch::x86_64::DebugRegisters to_neutral(kvm_debugregs const&);
kvm_debugregs to_kvm(arch::x86_64::DebugRegisters const&);

arch::x86_64::LapicRegisters to_neutral(kvm_lapic_state const&);
kvm_lapic_state to_kvm(arch::x86_64::LapicRegisters const&);

// KVM reports NMI, shadow and SMM state as valid; to_kvm marks them valid too, and the SIPI vector,
// exception payload and pending triple fault only when they carry something (KVM refuses the last
// two unless their capabilities are enabled).
arch::x86_64::PendingEvents to_neutral(kvm_vcpu_events const&);
kvm_vcpu_events to_kvm(arch::x86_64::PendingEvents const&);

// Fails for states x86 KVM does not use for a vCPU kasou created (SEV's AP reset hold, ...).
ErrorOr<arch::x86_64::MpState> to_neutral(kvm_mp_state const&);
kvm_mp_state to_kvm(arch::x86_64::MpState);

engine::PicChipState to_neutral(kvm_pic_state const&);
kvm_pic_state to_kvm(engine::PicChipState const&);
engine::IoapicChipState to_neutral(kvm_ioapic_state const&);
kvm_ioapic_state to_kvm(engine::IoapicChipState const&);
// KVM's count_load_time is CLOCK_MONOTONIC nanoseconds; `now_ns` is that clock when read or written.
engine::PitCounterState to_neutral(kvm_pit_channel_state const&, i64 now_ns);
kvm_pit_channel_state to_kvm(engine::PitCounterState const&, i64 now_ns);

} // namespace kasou::kvm
