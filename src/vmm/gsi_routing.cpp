#include "vmm/gsi_routing.h"

#include "base/log.h"
#include "base/try.h"

namespace kasou::vmm {

namespace {

using Chip = engine::IrqchipPin::Chip;

engine::GsiRoute irqchip_route(u32 gsi, Chip chip, u32 pin)
{
    return { gsi, engine::IrqchipPin { chip, pin } };
}

} // namespace

GsiRouting::GsiRouting(engine::Vm& vm, engine::InterruptControllers controllers)
    : m_vm(vm)
{
    if (controllers == engine::InterruptControllers::Split)
        return; // engines refuse routes to controllers they do not have; see set_ioapic_route
    // The PC's wiring, as QEMU programs it for KVM: ISA IRQs 0-15 to the PICs (but the cascade, 2),
    // GSIs 0-23 to the IOAPIC's pins, except that the PIT's IRQ 0 arrives at pin 2, which is what
    // the MADT's interrupt source override tells the guest.
    for (u32 gsi = 0; gsi < 24; ++gsi) {
        if (gsi < 8 && gsi != 2)
            m_entries.push_back(irqchip_route(gsi, Chip::PicPrimary, gsi));
        else if (gsi >= 8 && gsi < 16)
            m_entries.push_back(irqchip_route(gsi, Chip::PicSecondary, gsi - 8));
        if (gsi == 0)
            m_entries.push_back(irqchip_route(gsi, Chip::Ioapic, 2));
        else if (gsi != 2)
            m_entries.push_back(irqchip_route(gsi, Chip::Ioapic, gsi));
    }
}

u32 GsiRouting::allocate_msi()
{
    std::lock_guard guard(m_lock);
    u32 gsi = m_next_gsi++;
    m_entries.push_back({ gsi, engine::MsiMessage {} });
    return gsi;
}

ErrorOr<void> GsiRouting::set_ioapic_route(u32 pin, std::optional<engine::MsiMessage> message)
{
    if (pin >= IOAPIC_PINS)
        return make_error("IOAPIC pin out of range");
    std::lock_guard guard(m_lock);
    std::erase_if(m_entries, [pin](engine::GsiRoute const& entry) { return entry.gsi == pin; });
    if (message)
        m_entries.push_back({ pin, *message });
    return commit_locked();
}

ErrorOr<void> GsiRouting::set_msi(u32 gsi, u64 address, u32 data)
{
    std::lock_guard guard(m_lock);
    for (auto& entry : m_entries) {
        if (auto* msi = std::get_if<engine::MsiMessage>(&entry.target); msi && entry.gsi == gsi)
            *msi = { address, data };
    }
    return commit_locked();
}

ErrorOr<void> GsiRouting::commit()
{
    std::lock_guard guard(m_lock);
    return commit_locked();
}

ErrorOr<void> GsiRouting::commit_locked()
{
    return m_vm.set_gsi_routes(m_entries);
}

ErrorOr<std::unique_ptr<IrqfdMsiSink>> IrqfdMsiSink::create(engine::Vm& vm, GsiRouting& routing, u16 vectors)
{
    std::vector<Vector> created;
    for (u16 i = 0; i < vectors; ++i) {
        Vector vector { routing.allocate_msi(), TRY(EventFd::create()) };
        created.push_back(std::move(vector));
    }
    // An irqfd may be bound before its route is committed: KVM re-resolves irqfds whenever the
    // routing table changes, so the machine commits the table once, after every device is added.
    for (auto const& vector : created)
        TRY(vm.register_irqfd(vector.event.fd(), vector.gsi));
    return std::unique_ptr<IrqfdMsiSink>(new IrqfdMsiSink(routing, std::move(created)));
}

void IrqfdMsiSink::route_changed(u16 vector, u64 address, u32 data)
{
    if (vector >= m_vectors.size())
        return;
    if (auto result = m_routing.set_msi(m_vectors[vector].gsi, address, data); !result)
        spdlog::warn("MSI-X vector {}: {}", vector, result.error().to_string());
}

void IrqfdMsiSink::deliver(u16 vector)
{
    if (vector < m_vectors.size())
        (void)m_vectors[vector].event.signal();
}

} // namespace kasou::vmm
