#pragma once

#include <array>
#include <span>
#include <utility>
#include <vector>

#include <linux/kvm.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/mapping.h"
#include "base/types.h"

namespace kasou::kvm {

// One virtual CPU: its file descriptor and the shared kvm_run page. All calls except
// request_immediate_exit() belong to the one thread that runs the vCPU (KVM requires it).
// request_immediate_exit() may be called from any thread: it makes the next or current KVM_RUN
// return with EINTR once the running thread is also kicked with a signal, so stopping a VM never
// waits on a guest.
class Vcpu {
public:
    static ErrorOr<Vcpu> create(Fd fd, u32 index, u64 mmap_size);

    u32 index() const { return m_index; }
    kvm_run* run_state() const { return reinterpret_cast<kvm_run*>(m_run.data()); }

    // KVM_RUN. Returns false (not an error) when interrupted by a signal or an immediate exit.
    ErrorOr<bool> run();
    void request_immediate_exit() const;
    // Lets the next KVM_RUN enter the guest again after request_immediate_exit(), for a vCPU
    // that is kicked out to take an interrupt rather than to stop.
    void clear_immediate_exit() const;
    // KVM_INTERRUPT with a split irqchip: queues the PIC's ExtINT vector, which KVM injects once the
    // guest's local APIC accepts it (LINT0 in ExtINT mode) and its interrupt window is open.
    ErrorOr<void> inject_external_interrupt(u8 vector);

    ErrorOr<kvm_regs> regs() const;
    ErrorOr<void> set_regs(kvm_regs const&);
    ErrorOr<kvm_sregs> sregs() const;
    ErrorOr<void> set_sregs(kvm_sregs const&);
    ErrorOr<kvm_fpu> fpu() const;
    ErrorOr<void> set_fpu(kvm_fpu const&);
    // The legacy 4 KiB KVM_GET_XSAVE area (struct kvm_xsave without its flexible tail).
    using XsaveArea = std::array<u32, 1024>;
    ErrorOr<XsaveArea> xsave() const;
    ErrorOr<void> set_xsave(XsaveArea const&);
    ErrorOr<kvm_xcrs> xcrs() const;
    ErrorOr<void> set_xcrs(kvm_xcrs const&);
    ErrorOr<kvm_lapic_state> lapic() const;
    ErrorOr<void> set_lapic(kvm_lapic_state const&);
    ErrorOr<kvm_mp_state> mp_state() const;
    ErrorOr<void> set_mp_state(kvm_mp_state const&);
    ErrorOr<kvm_vcpu_events> events() const;
    ErrorOr<void> set_events(kvm_vcpu_events const&);
    ErrorOr<void> set_cpuid(std::span<kvm_cpuid_entry2 const> entries);
    // Reads the MSRs named by `indices`; fails if KVM does not know one of them.
    ErrorOr<std::vector<std::pair<u32, u64>>> msrs(std::span<u32 const> indices) const;
    ErrorOr<void> set_msrs(std::span<std::pair<u32, u64> const> values);
    // KVM_TRANSLATE: guest linear address to guest-physical, through the vCPU's current paging.
    ErrorOr<u64> translate(u64 linear) const;

private:
    Vcpu(Fd fd, u32 index, Mapping run)
        : m_fd(std::move(fd))
        , m_index(index)
        , m_run(std::move(run))
    {
    }

    Fd m_fd;
    u32 m_index { 0 };
    Mapping m_run;
};

} // namespace kasou::kvm
