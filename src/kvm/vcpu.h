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
    // Bytes of the kvm_run mapping: the bound for data KVM places after the struct (port I/O).
    u64 run_size() const { return m_run.size(); }

    // KVM_RUN. Returns false (not an error) when interrupted by a signal or an immediate exit; a
    // request_immediate_exit() it consumed is cleared then, so the next run enters the guest.
    ErrorOr<bool> run();
    void request_immediate_exit() const;

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
    ErrorOr<kvm_debugregs> debug_registers() const;
    ErrorOr<void> set_debug_registers(kvm_debugregs const&);
    ErrorOr<std::vector<kvm_cpuid_entry2>> cpuid() const;
    ErrorOr<void> set_cpuid(std::span<kvm_cpuid_entry2 const> entries);
    // Reads those MSRs of `indices` that KVM can read for this vCPU, skipping the others.
    ErrorOr<std::vector<std::pair<u32, u64>>> readable_msrs(std::span<u32 const> indices) const;
    ErrorOr<void> set_msrs(std::span<std::pair<u32, u64> const> values);
    // KVM_INTERRUPT: queues an external interrupt (userspace PIC only).
    ErrorOr<void> interrupt(u32 vector);
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
