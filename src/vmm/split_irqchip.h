#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/fd.h"
#include "bus/io_bus.h"
#include "emu/ioapic.h"
#include "emu/pic_pair.h"
#include "emu/pit_8254.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "vmm/gsi_routing.h"
#include "vmm/irqchip_mode.h"

namespace kasou::vmm {

// The PC's interrupt wiring around KVM's split irqchip: KVM keeps the local APICs, kasou runs the
// PIC pair, the IOAPIC and the PIT (src/emu) and connects them as a PC does. ISA lines go to both
// the PICs and the IOAPIC (IRQ 0 at IOAPIC pin 2, as the MADT's override says). The IOAPIC sends
// its interrupts with KVM_SIGNAL_MSI and mirrors each pin's translation into GSI routes 0-23, so
// KVM reports EOIs of its level-triggered vectors (KVM_EXIT_IOAPIC_EOI, passed to eoi()). The
// PICs' ExtINT reaches vCPU 0 only, through KVM_INTERRUPT from vCPU 0's own thread
// (before_boot_vcpu_run()), once KVM says the guest can take it; when the PIC's output rises, vCPU 0
// is kicked out of KVM_RUN to do so. The PIT runs from a timerfd served by its own thread.
//
// Lock order: the PIT, then the PICs or the IOAPIC, then the GSI routing or m_wake_lock.
// Destroy before the kvm::Vm and the GsiRouting it uses (it stops its timer thread first).
class SplitIrqchip {
public:
    // The mode to run with: `requested` if the host offers it, else split where KVM has
    // KVM_CAP_SPLIT_IRQCHIP and kernel (with a log line saying why) where it has not.
    static ErrorOr<IrqchipMode> choose_mode(kvm::System const& system, std::optional<IrqchipMode> requested);
    // kick_signal: the signal that interrupts KVM_RUN on a vCPU thread (its handler does nothing).
    static ErrorOr<std::unique_ptr<SplitIrqchip>> create(kvm::Vm& vm, GsiRouting& routing, int kick_signal);
    ~SplitIrqchip();
    SplitIrqchip(SplitIrqchip const&) = delete;
    SplitIrqchip& operator=(SplitIrqchip const&) = delete;

    // Puts the PICs (0x20, 0xa0, 0x4d0), the PIT (0x40, 0x61) and the IOAPIC (0xFEC00000) on the buses.
    ErrorOr<void> attach(bus::IoBus& pio, bus::IoBus& mmio);
    // Drives ISA line `irq` (0-15).
    void set_irq(u32 irq, bool level);
    // KVM_EXIT_IOAPIC_EOI: a local APIC ended a level-triggered interrupt the IOAPIC sent.
    void eoi(u8 vector);
    // On vCPU 0's thread before each KVM_RUN: hands a pending PIC interrupt to KVM, or asks KVM for
    // an exit when the guest can take one.
    ErrorOr<void> before_boot_vcpu_run(kvm::Vcpu& vcpu);
    // On vCPU 0's thread once it stops running the guest: no more kicks go to it.
    void boot_vcpu_ended();

private:
    SplitIrqchip(kvm::Vm& vm, GsiRouting& routing, int kick_signal, Fd timer, EventFd stop);
    void intr_changed(bool level);
    void arm_timer(std::optional<u64> deadline_ns);
    void timer_thread();

    kvm::Vm& m_vm;
    GsiRouting& m_routing;
    int m_kick_signal;
    Fd m_timer;
    EventFd m_stop;
    std::shared_ptr<emu::PicPair> m_pic;
    std::shared_ptr<emu::Ioapic> m_ioapic;
    std::shared_ptr<emu::Pit8254> m_pit;
    std::thread m_thread;

    std::mutex m_wake_lock;
    kvm::Vcpu* m_boot_vcpu { nullptr }; // set while vCPU 0's thread runs, under m_wake_lock
    pthread_t m_boot_thread {};
    std::atomic<bool> m_woken { false };
};

} // namespace kasou::vmm
