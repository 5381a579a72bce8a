#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "arch/x86_64/kernel_loader.h"
#include "base/error.h"
#include "base/event_fd.h"
#include "bus/io_bus.h"
#include "devices/serial_16550.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "memory/guest_memory.h"
#include "sched/host_cores.h"
#include "vmm/console.h"
#include "vmm/gsi_routing.h"
#include "vmm/pci_devices.h"
#include "vmm/machine_config.h"
#include "vmm/split_irqchip.h"
#include "vmm/stop_reason.h"

namespace kasou::vmm {

// One virtual machine built from a MachineConfig: KVM VM, guest RAM, the port-I/O and MMIO buses
// with their devices, the loaded kernel and one vCPU per configured CPU. create() builds and checks
// everything before any guest code runs; run() starts one thread per vCPU, serves the console and
// signals on the calling thread, and returns once every vCPU thread has ended.
//
// Stopping: request_stop() may be called from any thread (device callbacks on vCPU threads, the
// control loop); the first reason wins. It marks the machine stopping and wakes the control loop,
// which then kicks every vCPU out of KVM_RUN (immediate_exit plus a signal), so a stop never waits
// on a guest. Lock order: a device's own lock, then m_stop_lock.
class Machine {
public:
    static ErrorOr<std::unique_ptr<Machine>> create(MachineConfig config);
    ~Machine();

    // Runs the guest to its end. Must be called once, from the thread that created the machine.
    StopReason run();
    void request_stop(StopReason reason);

    arch::x86_64::LoadedKernel const& kernel() const { return m_kernel; }

private:
    Machine(MachineConfig config, kvm::System system, kvm::Vm vm, memory::GuestMemory memory, Console console,
        EventFd stop_event);

    ErrorOr<void> add_interrupt_controllers();
    // Drives ISA line `irq` on whichever irqchip the machine has.
    void set_isa_irq(u32 irq, bool level);
    ErrorOr<void> add_devices();
    ErrorOr<void> add_pci_devices();
    ErrorOr<void> place_vcpus();
    ErrorOr<void> create_vcpus();
    void vcpu_thread(u32 index);
    void control_loop();
    void kick_vcpus();
    void warn_unhandled(char const* what, u64 address, u32 size, bool is_write);

    MachineConfig m_config;
    kvm::System m_system;
    kvm::Vm m_vm;
    memory::GuestMemory m_memory;
    Console m_console;
    EventFd m_stop_event;
    bus::IoBus m_pio_bus { "port I/O" };
    bus::IoBus m_mmio_bus { "MMIO" };
    std::shared_ptr<devices::Serial16550> m_serial;
    IrqchipMode m_irqchip_mode { IrqchipMode::Kernel };
    std::unique_ptr<GsiRouting> m_routing;
    std::unique_ptr<SplitIrqchip> m_split_irqchip; // with IrqchipMode::Split only
    std::unique_ptr<PciDevices> m_pci;
    std::unique_ptr<sched::HostCores> m_cores;
    std::optional<sched::VmPlacement> m_placement;
    arch::x86_64::LoadedKernel m_kernel;
    std::vector<kvm::Vcpu> m_vcpus;
    std::vector<std::thread> m_threads;
    std::atomic<u32> m_running_vcpus { 0 };
    std::atomic<bool> m_stopping { false };
    std::atomic<u32> m_unhandled_warnings { 0 };
    std::mutex m_stop_lock;
    std::optional<StopReason> m_stop_reason;
};

} // namespace kasou::vmm
