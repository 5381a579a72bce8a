#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/event_fd.h"
#include "engine/vm.h"
#include "pci/msix.h"

namespace kasou::vmm {

// The VM's whole GSI routing table: GSIs 0-23 are the IOAPIC's pins, then one MSI route per device
// vector from GSI 24 up. With the engine's own interrupt controllers, GSIs 0-23 follow the PC's
// wiring to its PICs and IOAPIC (ISA IRQ 0 at IOAPIC pin 2, as the MADT says); with a split
// irqchip they are MSI routes that mirror kasou's IOAPIC's redirection table (the engine scans them
// for the level-triggered vectors whose EOIs it must report). The engine's table is replaced whole,
// so this one object owns it and commits it whole after each change. Thread-safe (drivers
// reprogram MSI-X and the IOAPIC from vCPU threads).
class GsiRouting {
public:
    static constexpr u32 FIRST_MSI_GSI = 24;
    static constexpr u32 IOAPIC_PINS = FIRST_MSI_GSI;

    GsiRouting(engine::Vm& vm, engine::InterruptControllers controllers);

    // A new GSI for an MSI route (addressed nowhere until set_msi).
    u32 allocate_msi();
    ErrorOr<void> set_msi(u32 gsi, u64 address, u32 data);
    // Split irqchip: GSI `pin` becomes the MSI the IOAPIC pin translates to, or no route while the
    // pin is masked; committed at once.
    ErrorOr<void> set_ioapic_route(u32 pin, std::optional<engine::MsiMessage> message);
    // Installs the current table in the engine.
    ErrorOr<void> commit();

private:
    ErrorOr<void> commit_locked();

    std::mutex m_lock;
    engine::Vm& m_vm;
    std::vector<engine::GsiRoute> m_entries;
    u32 m_next_gsi { FIRST_MSI_GSI };
};

// The MSI-X vectors of one PCI function, each raised through an eventfd that KVM turns into the
// vector's MSI (irqfd), so a device thread interrupts the guest with one write and no ioctl. Its
// GSIs take effect when the GsiRouting is next committed.
class IrqfdMsiSink final : public pci::MsiSink {
public:
    static ErrorOr<std::unique_ptr<IrqfdMsiSink>> create(engine::Vm& vm, GsiRouting& routing, u16 vectors);

    void route_changed(u16 vector, u64 address, u32 data) override;
    void deliver(u16 vector) override;

private:
    struct Vector {
        u32 gsi;
        EventFd event;
    };
    IrqfdMsiSink(GsiRouting& routing, std::vector<Vector> vectors)
        : m_routing(routing)
        , m_vectors(std::move(vectors))
    {
    }

    GsiRouting& m_routing;
    std::vector<Vector> m_vectors;
};

} // namespace kasou::vmm
