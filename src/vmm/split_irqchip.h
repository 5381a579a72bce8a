#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/fd.h"
#include "bus/io_bus.h"
#include "emu/ioapic.h"
#include "emu/pic_pair.h"
#include "emu/pit_8254.h"
#include "engine/engine.h"
#include "engine/vcpu.h"
#include "engine/vm.h"
#include "vmm/gsi_routing.h"

namespace kasou::vmm {

// The PC's interrupt wiring around a split irqchip (engine::InterruptControllers::Split; KVM's
// KVM_CAP_SPLIT_IRQCHIP): the engine keeps the local APICs, kasou runs the PIC pair, the IOAPIC and
// the PIT (src/emu) and connects them as a PC does. ISA lines go to both the PICs and the IOAPIC
// (IRQ 0 at IOAPIC pin 2, as the MADT's override says). The IOAPIC sends its interrupts as MSIs
// (engine::Vm::signal_msi) and mirrors each pin's translation into GSI routes 0-23, so the engine
// reports EOIs of its level-triggered vectors (exit::IoapicEoi, passed to eoi()). The PICs'
// ExtINT reaches vCPU 0 only, injected from vCPU 0's own thread (before_boot_vcpu_run()) once the
// engine says the guest can take it; when the PIC's output rises, vCPU 0 is kicked out of run()
// to do so. The PIT runs from a timerfd served by its own thread.
//
// Lock order: the PIT, then the PICs or the IOAPIC, then the GSI routing or m_wake_lock.
// Destroy before the engine::Vm, the GsiRouting and vCPU 0 it uses (it stops its timer thread first).
class SplitIrqchip {
public:
    // The three models' state, for snapshots.
    struct State {
        emu::PicPair::State pic;
        emu::Ioapic::State ioapic;
        emu::Pit8254::State pit;
    };

    // The interrupt controllers to run with: `requested` if the engine offers them, else split
    // where it can and the engine's own (with a log line saying why) where it cannot.
    static ErrorOr<engine::InterruptControllers> choose(engine::Engine const& engine, std::optional<engine::InterruptControllers> requested);
    static ErrorOr<std::unique_ptr<SplitIrqchip>> create(engine::Vm& vm, GsiRouting& routing);
    ~SplitIrqchip();
    SplitIrqchip(SplitIrqchip const&) = delete;
    SplitIrqchip& operator=(SplitIrqchip const&) = delete;

    // Puts the PICs (0x20, 0xa0, 0x4d0), the PIT (0x40, 0x61) and the IOAPIC (0xFEC00000) on the buses.
    ErrorOr<void> attach(bus::IoBus& pio, bus::IoBus& mmio);
    // Drives ISA line `irq` (0-15).
    void set_irq(u32 irq, bool level);
    // exit::IoapicEoi: a local APIC ended a level-triggered interrupt the IOAPIC sent.
    void eoi(u8 vector);
    // On vCPU 0's thread before each KVM_RUN: hands a pending PIC interrupt to KVM, or asks KVM for
    // an exit when the guest can take one.
    ErrorOr<void> before_boot_vcpu_run(engine::Vcpu& vcpu);
    // On vCPU 0's thread once it stops running the guest: no more kicks go to it.
    void boot_vcpu_ended();

    // While the machine is paused the PIT's time stands still and its host timer is disarmed;
    // resume() goes on with the remaining count (no burst of the ticks the pause skipped).
    void pause();
    void resume();
    State state();
    // Checks every part before changing any; the IOAPIC's routes go to the GSI routing (the
    // caller commits them).
    ErrorOr<void> set_state(State const& state);

private:
    SplitIrqchip(engine::Vm& vm, GsiRouting& routing, Fd timer, EventFd stop);
    void intr_changed(bool level);
    void arm_timer(std::optional<u64> deadline_ns);
    void timer_thread();

    engine::Vm& m_vm;
    GsiRouting& m_routing;
    Fd m_timer;
    EventFd m_stop;
    std::shared_ptr<emu::PicPair> m_pic;
    std::shared_ptr<emu::Ioapic> m_ioapic;
    std::shared_ptr<emu::Pit8254> m_pit;
    std::thread m_thread;

    std::mutex m_wake_lock;
    engine::Vcpu* m_boot_vcpu { nullptr }; // set while vCPU 0's thread runs, under m_wake_lock
};

} // namespace kasou::vmm
