#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "emu/cpu/cpu.h"
#include "emu/lapic.h"
#include "engine/vcpu.h"

namespace kasou::emu {

class EmuVm;

// One vCPU on the software CPU: a cpu::Cpu with its Lapic. run() interprets guest code in slices
// of a few thousand instructions, delivers the LAPIC's interrupts between them, waits inside run()
// while the guest halts (until an interrupt, the LAPIC timer or a kick), answers LAPIC accesses
// and ioeventfd writes itself and returns every other port or MMIO access as an exit. kick() is
// safe from any thread (an atomic flag and a condition variable); everything else belongs to the
// thread that runs it.
class EmuVcpu final : public engine::Vcpu, private cpu::CpuPlatform {
public:
    EmuVcpu(EmuVm& vm, u32 index);
    ~EmuVcpu() override;

    u32 index() const override { return m_index; }
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

    // From other threads (the VM's routing): an interrupt for this LAPIC, INIT, SIPI.
    void accept_interrupt(u8 vector, bool level);
    void init_signal();
    void startup_signal(u8 vector);
    u32 apic_id() const { return m_index; }

private:
    u64 tsc() override;
    bool read_msr(u32 index, u64& value) override;
    bool write_msr(u32 index, u64 value) override;
    void apply(Lapic::WriteEffect const& effect);
    // Waits while halted or not yet started; false when kicked.
    bool wait_for_work();
    void wake();

    EmuVm& m_vm;
    u32 const m_index;
    mutable Lapic m_lapic;
    cpu::Cpu m_cpu;
    arch::x86_64::MpState m_mp_state;
    bool m_has_run { false };
    // A read exit the VMM answers in m_exit_data before the next run().
    bool m_read_pending { false };
    u8 m_read_size { 0 };
    u8 m_exit_data[8] {};
    std::optional<u8> m_pending_eoi; // a level EOI to report as an exit
    bool m_window_wanted { false };

    std::atomic<bool> m_kicked { false };
    std::mutex m_wait_lock;
    std::condition_variable m_wake;
    std::atomic<bool> m_work { false }; // set with m_wait_lock: an interrupt or signal arrived
    std::atomic<int> m_sipi_vector { -1 };
    std::atomic<bool> m_init { false };
};

} // namespace kasou::emu
