#pragma once

#include <memory>
#include <span>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "engine/irqchip_state.h"
#include "engine/vcpu.h"

namespace kasou::engine {

// Which interrupt controllers an engine VM emulates itself.
enum class InterruptControllers {
    InKernel, // PICs, IOAPIC, PIT and the local APICs all in the engine
    Split,    // only the local APICs in the engine; PIC, IOAPIC and PIT are the VMM's
};

// How an engine VM is created. A new VM-level feature is a field here, checked against
// Engine::supports() by the engine's create_vm().
struct VmOptions {
    InterruptControllers interrupt_controllers { InterruptControllers::InKernel };
};

// Where a GSI goes: a pin of one of the engine's interrupt controllers, or an MSI message.
struct IrqchipPin {
    enum class Chip { PicPrimary, PicSecondary, Ioapic };
    Chip chip { Chip::Ioapic };
    u32 pin { 0 };
};
struct MsiMessage {
    u64 address { 0 };
    u32 data { 0 };
};
struct GsiRoute {
    u32 gsi { 0 };
    std::variant<IrqchipPin, MsiMessage> target;
};

// One virtual machine of an engine: guest-physical memory slots, the factory for its vCPUs, and the
// interrupt and notification plumbing (interrupt lines, MSIs, eventfds that raise a GSI, eventfds
// that a guest write signals). Layout calls (memory, vCPU creation) are made by one thread while no
// vCPU runs; set_irq_line, signal_msi and set_gsi_routes are safe from any thread. The VM outlives
// its vCPUs.
class Vm {
public:
    virtual ~Vm() = default;

    // Maps `size` bytes at `host` (page-aligned, owned by the caller for the VM's life) at
    // `guest_physical` as slot `slot`.
    virtual ErrorOr<void> map_memory(u32 slot, u64 guest_physical, u64 size, void* host, bool log_dirty) = 0;
    // The dirty-page bitmap of a slot mapped with log_dirty, one bit per 4 KiB page; reading clears it.
    virtual ErrorOr<std::vector<u64>> dirty_log(u32 slot, u64 size) = 0;

    virtual ErrorOr<std::unique_ptr<Vcpu>> create_vcpu(u32 index) = 0;

    // Raises (level = true) or lowers an interrupt line of the engine's interrupt controllers.
    virtual ErrorOr<void> set_irq_line(u32 irq, bool level) = 0;
    virtual ErrorOr<void> signal_msi(MsiMessage message) = 0;
    // Replaces the whole GSI table.
    virtual ErrorOr<void> set_gsi_routes(std::span<GsiRoute const> routes) = 0;
    // A write to `event_fd` raises `gsi` without a call into the VMM.
    virtual ErrorOr<void> register_irqfd(int event_fd, u32 gsi) = 0;
    virtual ErrorOr<void> unregister_irqfd(int event_fd, u32 gsi) = 0;
    // A guest write of `size` bytes (0: any size) to `address` (a port when pio) signals event_fd
    // instead of returning an exit.
    virtual ErrorOr<void> register_ioeventfd(int event_fd, u64 address, u32 size, bool pio) = 0;
    // Removes a registration made with the same arguments.
    virtual ErrorOr<void> unregister_ioeventfd(int event_fd, u64 address, u32 size, bool pio) = 0;

    // Whole state of the engine's own PICs, IOAPIC and PIT (InterruptControllers::InKernel only),
    // and of the clock it gives the guest; for snapshots, read and written while no vCPU runs.
    virtual ErrorOr<KernelIrqchipState> kernel_irqchip_state() = 0;
    virtual ErrorOr<void> set_kernel_irqchip_state(KernelIrqchipState const& state) = 0;
    virtual ErrorOr<ClockState> clock() = 0;
    virtual ErrorOr<void> set_clock(ClockState const& state) = 0;
};

} // namespace kasou::engine
