#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "base/event_fd.h"
#include "engine/vm.h"
#include "pci/msix.h"

namespace kasou::vmm {

// The VM's whole GSI routing table: the PC's interrupt wiring to the engine's PICs and IOAPIC
// (ISA IRQ 0 at IOAPIC pin 2, as the MADT says) plus one MSI route per device vector from GSI 24 up. The engine's table is replaced whole, so this one object owns it and
// commits it whole after each change. Thread-safe (drivers reprogram MSI-X from vCPU threads).
class GsiRouting {
public:
    static constexpr u32 FIRST_MSI_GSI = 24;

    explicit GsiRouting(engine::Vm& vm);

    // A new GSI for an MSI route (addressed nowhere until set_msi).
    u32 allocate_msi();
    ErrorOr<void> set_msi(u32 gsi, u64 address, u32 data);
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
