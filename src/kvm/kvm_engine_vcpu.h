#pragma once

#include <atomic>
#include <pthread.h>
#include <span>

#include "engine/vcpu.h"
#include "kvm/vcpu.h"

namespace kasou::kvm {

// The engine vCPU on KVM: run() is KVM_RUN with its kvm_run exit turned into an engine::VcpuExit,
// the state calls are the KVM_GET_* / KVM_SET_* ioctls through state_conversion.h. kick() sets
// kvm_run.immediate_exit and signals the thread inside run() with kick_signal(), whose handler
// KvmEngine installs without SA_RESTART so KVM_RUN returns EINTR. `msr_indices` (the host's MSR
// index list) outlives the vCPU.
class KvmEngineVcpu final : public engine::Vcpu {
public:
    KvmEngineVcpu(kvm::Vcpu vcpu, std::span<u32 const> msr_indices)
        : m_vcpu(std::move(vcpu))
        , m_msr_indices(msr_indices)
    {
    }

    static int kick_signal();
    // Installs the do-nothing handler of kick_signal() (idempotent).
    static void install_kick_handler();

    u32 index() const override { return m_vcpu.index(); }
    ErrorOr<engine::VcpuExit> run() override;
    void kick() override;

    ErrorOr<arch::x86_64::VcpuState> state() override;
    ErrorOr<void> set_state(arch::x86_64::VcpuState const& state) override;

    ErrorOr<arch::x86_64::GeneralRegisters> registers() const override;
    ErrorOr<void> set_registers(arch::x86_64::GeneralRegisters const&) override;
    ErrorOr<arch::x86_64::SystemRegisters> system_registers() const override;
    ErrorOr<void> set_system_registers(arch::x86_64::SystemRegisters const&) override;
    ErrorOr<void> set_cpuid(arch::x86_64::CpuidTable const&) override;
    ErrorOr<void> set_xcrs(std::vector<arch::x86_64::Xcr> const&) override;
    ErrorOr<arch::x86_64::LapicRegisters> lapic() const override;
    ErrorOr<void> set_lapic(arch::x86_64::LapicRegisters const&) override;
    ErrorOr<u64> translate(u64 linear) const override;

    ErrorOr<void> inject_external_interrupt(u8 vector) override;
    void request_interrupt_window(bool wanted) override;
    bool ready_for_interrupt_injection() const override;

private:
    engine::VcpuExit decode_exit();
    // KVM finishes a port I/O or MMIO exit (a read's register, RIP past the instruction) only in
    // the next KVM_RUN: one with immediate_exit set completes it without entering the guest.
    ErrorOr<void> complete_exit();

    kvm::Vcpu m_vcpu;
    std::span<u32 const> m_msr_indices;
    bool m_has_run { false };
    bool m_exit_incomplete { false };
    // The thread inside run(), or 0 outside it.
    std::atomic<pthread_t> m_running_thread { 0 };
};

} // namespace kasou::kvm
