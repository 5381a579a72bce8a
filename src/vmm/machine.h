#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "arch/x86_64/kernel_loader.h"
#include "base/error.h"
#include "base/event_fd.h"
#include "bus/io_bus.h"

#include "devices/cmos_rtc.h"
#include "devices/i8042.h"
#include "devices/serial_16550.h"
#include "engine/engine.h"
#include "engine/vcpu.h"
#include "engine/vm.h"
#include "memory/guest_memory.h"
#include "sched/host_cores.h"
#include "vmm/console.h"
#include "vmm/gsi_routing.h"
#include "vmm/pci_devices.h"
#include "vmm/machine_config.h"
#include "vmm/split_irqchip.h"
#include "vmm/stop_reason.h"

namespace kasou::vmm {

// The host's physical memory in bytes, the ceiling for a machine's RAM.
u64 host_memory();

// One virtual machine built from a MachineConfig: an engine VM (KVM), guest RAM, the port-I/O and
// MMIO buses with their devices, the loaded kernel and one vCPU per configured CPU.
//
// Lifecycle: create() builds and checks everything before any guest code runs (Built). start()
// starts one thread per vCPU (Running). pause() brings every vCPU out of the guest and parks its
// thread, then parks every virtio I/O thread with its requests answered, and returns once all are
// parked (Paused); resume() lets devices and then vCPUs go on where they were. A stop, asked for
// with request_stop() from any thread (device callbacks on vCPU threads, the caller's own loop;
// the first reason wins), ends the vCPU threads whether the machine runs or is paused; wait()
// returns the reason once they have all ended. Process policy (signals, standard input, exit
// statuses) is the caller's: stop_fd() and console_input() are what it needs for that.
//
// Threads: create(), start(), pause(), resume(), wait() and the vCPU-state calls belong to one
// controlling thread; request_stop() and console_input() may be called from any thread. A stop
// never waits on a guest: every vCPU is kicked out of its engine's run(). Lock order: a device's
// own lock, then m_stop_lock; m_state_lock is taken alone.
class Machine {
public:
    // What a restore may choose: the host side of the machine, which the guest does not see, and
    // what the snapshot must match.
    struct RestoreOptions {
        std::optional<SerialSpec> serial;           // where the UART writes; unset: as when saved
        std::optional<std::string> state_dir;       // where pool volumes are looked up
        std::optional<u32> cpus;                    // the snapshot must have this many vCPUs
        std::optional<u64> memory;                  // and this much memory
        std::optional<engine::InterruptControllers> irqchip; // and these interrupt controllers
        std::chrono::steady_clock::time_point start_time { std::chrono::steady_clock::now() };
    };

    static ErrorOr<std::unique_ptr<Machine>> create(MachineConfig config);
    // Builds a machine from the snapshot in `directory` (written by save_snapshot): its memory
    // file mapped copy-on-write (read lazily, never written), every vCPU, the interrupt
    // controllers, the engine's clock and the devices as they were. The machine is Built: start()
    // resumes the guest where it was. Any problem (another format version, a truncated or corrupted
    // state file, a memory file of the wrong size, a mismatch with `options`) is one error, and
    // nothing has run.
    static ErrorOr<std::unique_ptr<Machine>> restore(std::string const& directory, RestoreOptions const& options);
    // Stops and ends a machine that is still running or paused.
    ~Machine();

    ErrorOr<void> start();
    void request_stop(StopReason reason);
    // Readable from the moment the machine is stopping (to poll beside other descriptors).
    int stop_fd() const { return m_stop_event.fd(); }
    // Waits for the stop, ends every vCPU thread and returns why the machine stopped.
    StopReason wait();

    // Fail, without waiting, on a machine that was never started or is stopping; pause() also
    // fails when a stop comes while it waits, resume() when the machine is not paused.
    ErrorOr<void> pause();
    ErrorOr<void> resume();

    // The whole state of every vCPU, in index order; only while paused.
    ErrorOr<std::vector<arch::x86_64::VcpuState>> vcpu_states();
    ErrorOr<void> set_vcpu_states(std::vector<arch::x86_64::VcpuState> const& states);

    // Presses Ctrl+Alt+Del on the i8042's keyboard (a Linux guest reboots); only while started.
    ErrorOr<void> send_ctrl_alt_del();

    // Writes a snapshot of the paused machine to `directory` (docs/snapshot.md): the guest's RAM
    // in `memory`, everything else in `state`. It is written into a new directory beside it and
    // then renamed into place (swapped atomically with an older snapshot there, which is then
    // removed), so `directory` always holds a whole snapshot or none. Fails on a machine that is
    // not paused, and for devices whose state cannot be saved yet (virtio devices).
    ErrorOr<void> save_snapshot(std::string const& directory);

    // Where keystrokes for the guest's UART come from (-1: none, or the virtio console takes
    // them), and the call that hands them to it.
    int console_input_fd() const;
    void console_input(std::span<u8 const> bytes);

    arch::x86_64::LoadedKernel const& kernel() const { return m_kernel; }

private:
    Machine(MachineConfig config, std::unique_ptr<engine::Engine> engine, std::unique_ptr<engine::Vm> vm, memory::GuestMemory memory,
        Console console, EventFd stop_event);

    // Everything create() and restore() share: the VM, its memory slots, devices and vCPUs.
    static ErrorOr<std::unique_ptr<Machine>> build(MachineConfig config, std::unique_ptr<engine::Engine> engine, memory::GuestMemory memory);
    ErrorOr<void> restore_state(struct SnapshotState const& state);
    ErrorOr<void> add_interrupt_controllers();
    // Drives ISA line `irq` on whichever irqchip the machine has.
    void set_isa_irq(u32 irq, bool level);
    ErrorOr<void> add_devices();
    ErrorOr<void> add_pci_devices();
    ErrorOr<void> place_vcpus();
    ErrorOr<void> create_vcpus();
    void vcpu_thread(u32 index);
    // Parks the calling vCPU thread until resume() or a stop.
    void park_vcpu();
    void kick_vcpus();
    // Kicks until every vCPU thread satisfies `done` (checked under m_state_lock) or the machine
    // is stopping.
    template<class Predicate>
    void kick_until(Predicate done);
    void warn_unhandled(char const* what, u64 address, u32 size, bool is_write);

    MachineConfig m_config;
    std::unique_ptr<engine::Engine> m_engine;
    std::unique_ptr<engine::Vm> m_vm;
    memory::GuestMemory m_memory;
    Console m_console;
    EventFd m_stop_event;
    bus::IoBus m_pio_bus { "port I/O" };
    bus::IoBus m_mmio_bus { "MMIO" };
    std::shared_ptr<devices::Serial16550> m_serial;

    std::shared_ptr<devices::CmosRtc> m_rtc;
    std::shared_ptr<devices::I8042> m_i8042;
    engine::InterruptControllers m_interrupt_controllers { engine::InterruptControllers::InKernel };
    std::unique_ptr<GsiRouting> m_routing;
    std::unique_ptr<PciDevices> m_pci;
    std::unique_ptr<sched::HostCores> m_cores;
    std::optional<sched::VmPlacement> m_placement;
    arch::x86_64::LoadedKernel m_kernel;
    std::vector<std::unique_ptr<engine::Vcpu>> m_vcpus;
    // With InterruptControllers::Split only. Destroyed before the vCPUs, the routing and the VM
    // it uses.
    std::unique_ptr<SplitIrqchip> m_split_irqchip;
    std::vector<std::thread> m_threads;
    std::atomic<bool> m_stopping { false };
    std::atomic<bool> m_pause_requested { false }; // written under m_state_lock
    std::mutex m_state_lock;
    std::condition_variable m_state_changed;
    u32 m_running_vcpus { 0 }; // vCPU threads not yet ended; under m_state_lock
    u32 m_parked_vcpus { 0 };  // under m_state_lock
    bool m_paused { false };   // under m_state_lock
    std::atomic<u32> m_unhandled_warnings { 0 };
    std::mutex m_stop_lock;
    std::optional<StopReason> m_stop_reason;
};

} // namespace kasou::vmm
