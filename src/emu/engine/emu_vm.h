#pragma once

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/event_fd.h"
#include "base/fd.h"
#include "emu/cpu/physical_memory.h"
#include "emu/lapic.h"
#include "engine/vm.h"

namespace kasou::emu {

class EmuVcpu;

// The engine VM of the software CPU: guest RAM as host pointers shared by every vCPU, the vCPUs'
// local APICs and the routing between them (MSIs, IPIs, INIT / SIPI), irqfds served by one
// thread, and ioeventfds matched on the vCPU's own thread. Memory is mapped before any vCPU is
// created; routes, irqfds and ioeventfds may change at any time (m_lock). Outlives its vCPUs.
class EmuVm final : public engine::Vm {
public:
    static ErrorOr<std::unique_ptr<EmuVm>> create();
    ~EmuVm() override;

    ErrorOr<void> map_memory(u32 slot, u64 guest_physical, u64 size, void* host, bool log_dirty) override;
    ErrorOr<std::vector<u64>> dirty_log(u32 slot, u64 size) override;
    ErrorOr<std::unique_ptr<engine::Vcpu>> create_vcpu(u32 index) override;
    ErrorOr<void> set_irq_line(u32 irq, bool level) override;
    ErrorOr<void> signal_msi(engine::MsiMessage message) override;
    ErrorOr<void> set_gsi_routes(std::span<engine::GsiRoute const> routes) override;
    ErrorOr<void> register_irqfd(int event_fd, u32 gsi) override;
    ErrorOr<void> unregister_irqfd(int event_fd, u32 gsi) override;
    ErrorOr<void> register_ioeventfd(int event_fd, u64 address, u32 size, bool pio) override;
    ErrorOr<void> unregister_ioeventfd(int event_fd, u64 address, u32 size, bool pio) override;
    // No in-kernel interrupt controllers, and no saveable clock yet: snapshots of a machine on
    // the software CPU are refused (Unsupported).
    ErrorOr<engine::KernelIrqchipState> kernel_irqchip_state() override;
    ErrorOr<void> set_kernel_irqchip_state(engine::KernelIrqchipState const& state) override;
    ErrorOr<engine::ClockState> clock() override;
    ErrorOr<void> set_clock(engine::ClockState const& state) override;

    // For the vCPUs.
    cpu::PhysicalMemory const& memory() const { return m_memory; }
    // A guest write the VM turns into an eventfd signal instead of an exit: true when it did.
    bool ioeventfd_write(u64 address, u32 size, bool pio);
    void send_ipi(u32 from, Lapic::Ipi const& ipi);
    void vcpu_gone(EmuVcpu* vcpu);

private:
    EmuVm(EventFd stop);
    void irqfd_thread();
    void deliver_fixed(u32 destination, u8 vector, bool level);

    struct Irqfd {
        int fd;
        u32 gsi;
    };
    struct Ioeventfd {
        int fd;
        u64 address;
        u32 size;
        bool pio;
    };

    cpu::PhysicalMemory m_memory;
    EventFd m_stop;
    std::mutex m_lock;
    std::vector<EmuVcpu*> m_vcpus;           // under m_lock
    std::vector<engine::GsiRoute> m_routes;  // under m_lock
    std::vector<Irqfd> m_irqfds;             // under m_lock
    std::vector<Ioeventfd> m_ioeventfds;     // under m_lock
    EventFd m_irqfds_changed;
    std::thread m_thread;
};

} // namespace kasou::emu
