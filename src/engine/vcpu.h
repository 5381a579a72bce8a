#pragma once

#include <vector>

#include "arch/x86_64/cpu_state.h"
#include "base/error.h"
#include "base/types.h"
#include "engine/vcpu_exit.h"

namespace kasou::engine {

// One virtual CPU of an engine VM. The thread that first calls run() owns the vCPU: every call but
// kick() belongs to that thread (or, before the first run() and while no thread runs it, to the
// thread that built it). kick() may be called from any thread at any time: the current or the next
// run() returns exit::Interrupted promptly, so a VMM that sets a flag and then kicks never waits on
// the guest. An implementation keeps no state of the VMM's: devices, buses and guest memory are
// reached only through the exits it returns.
class Vcpu {
public:
    virtual ~Vcpu() = default;

    virtual u32 index() const = 0;

    // Runs guest code until something needs the VMM. An error is the engine failing to run at all
    // (not a guest's doing); a guest that cannot go on is an exit::Failure.
    virtual ErrorOr<VcpuExit> run() = 0;
    virtual void kick() = 0;

    // Whole-state access for snapshots and migration; the vCPU must not be running. Both first
    // complete the last exit (an engine may finish a port I/O or MMIO instruction only when the
    // guest is re-entered), so the state is between two instructions. A vCPU that has run keeps
    // its CPUID table: set_state applies state.cpuid only to one that has not.
    virtual ErrorOr<arch::x86_64::VcpuState> state() = 0;
    virtual ErrorOr<void> set_state(arch::x86_64::VcpuState const& state) = 0;

    // The pieces the VMM sets up at boot and reads for diagnostics.
    virtual ErrorOr<arch::x86_64::GeneralRegisters> registers() const = 0;
    virtual ErrorOr<void> set_registers(arch::x86_64::GeneralRegisters const&) = 0;
    virtual ErrorOr<arch::x86_64::SystemRegisters> system_registers() const = 0;
    virtual ErrorOr<void> set_system_registers(arch::x86_64::SystemRegisters const&) = 0;
    virtual ErrorOr<void> set_cpuid(arch::x86_64::CpuidTable const&) = 0;
    virtual ErrorOr<void> set_xcrs(std::vector<arch::x86_64::Xcr> const&) = 0;
    virtual ErrorOr<arch::x86_64::LapicRegisters> lapic() const = 0;
    virtual ErrorOr<void> set_lapic(arch::x86_64::LapicRegisters const&) = 0;

    // Guest linear address to guest-physical through the vCPU's current paging.
    virtual ErrorOr<u64> translate(u64 linear) const = 0;

    // External interrupts from a VMM-side PIC (engine VMs with InterruptControllers::Split):
    // inject `vector` now (only when ready_for_interrupt_injection()), or ask run() to return
    // exit::InterruptWindowOpen as soon as the guest can take one.
    virtual ErrorOr<void> inject_external_interrupt(u8 vector) = 0;
    virtual void request_interrupt_window(bool wanted) = 0;
    virtual bool ready_for_interrupt_injection() const = 0;
};

} // namespace kasou::engine
