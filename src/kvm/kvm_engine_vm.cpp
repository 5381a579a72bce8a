#include "kvm/kvm_engine_vm.h"

#include <ctime>

#include "base/try.h"
#include "kvm/kvm_engine_vcpu.h"
#include "kvm/state_conversion.h"
#include "kvm/vcpu.h"

namespace kasou::kvm {

namespace {

u32 irqchip_number(engine::IrqchipPin::Chip chip)
{
    switch (chip) {
    case engine::IrqchipPin::Chip::PicPrimary: return KVM_IRQCHIP_PIC_MASTER;
    case engine::IrqchipPin::Chip::PicSecondary: return KVM_IRQCHIP_PIC_SLAVE;
    case engine::IrqchipPin::Chip::Ioapic: return KVM_IRQCHIP_IOAPIC;
    }
    return KVM_IRQCHIP_IOAPIC;
}

kvm_irq_routing_entry routing_entry(engine::GsiRoute const& route)
{
    kvm_irq_routing_entry entry {};
    entry.gsi = route.gsi;
    if (auto const* pin = std::get_if<engine::IrqchipPin>(&route.target)) {
        entry.type = KVM_IRQ_ROUTING_IRQCHIP;
        entry.u.irqchip.irqchip = irqchip_number(pin->chip);
        entry.u.irqchip.pin = pin->pin;
    } else {
        auto const& msi = std::get<engine::MsiMessage>(route.target);
        entry.type = KVM_IRQ_ROUTING_MSI;
        entry.u.msi.address_lo = static_cast<u32>(msi.address);
        entry.u.msi.address_hi = static_cast<u32>(msi.address >> 32);
        entry.u.msi.data = msi.data;
    }
    return entry;
}

} // namespace

ErrorOr<void> KvmEngineVm::map_memory(u32 slot, u64 guest_physical, u64 size, void* host, bool log_dirty)
{
    return m_vm.set_user_memory_region(slot, guest_physical, size, host, log_dirty);
}

ErrorOr<std::vector<u64>> KvmEngineVm::dirty_log(u32 slot, u64 size) { return m_vm.dirty_log(slot, size); }

ErrorOr<std::unique_ptr<engine::Vcpu>> KvmEngineVm::create_vcpu(u32 index)
{
    return std::make_unique<KvmEngineVcpu>(TRY(m_vm.create_vcpu(index)), m_msr_indices);
}

ErrorOr<void> KvmEngineVm::set_irq_line(u32 irq, bool level) { return m_vm.irq_line(irq, level); }

ErrorOr<void> KvmEngineVm::signal_msi(engine::MsiMessage message) { return m_vm.signal_msi(message.address, message.data); }

ErrorOr<void> KvmEngineVm::set_gsi_routes(std::span<engine::GsiRoute const> routes)
{
    std::vector<kvm_irq_routing_entry> entries;
    entries.reserve(routes.size());
    for (auto const& route : routes)
        entries.push_back(routing_entry(route));
    return m_vm.set_gsi_routing(entries);
}

ErrorOr<void> KvmEngineVm::register_irqfd(int event_fd, u32 gsi) { return m_vm.register_irqfd(event_fd, gsi); }
ErrorOr<void> KvmEngineVm::unregister_irqfd(int event_fd, u32 gsi) { return m_vm.unregister_irqfd(event_fd, gsi); }

ErrorOr<void> KvmEngineVm::register_ioeventfd(int event_fd, u64 address, u32 size, bool pio)
{
    return m_vm.register_ioeventfd(event_fd, address, size, pio);
}

ErrorOr<void> KvmEngineVm::unregister_ioeventfd(int event_fd, u64 address, u32 size, bool pio)
{
    return m_vm.unregister_ioeventfd(event_fd, address, size, pio);
}

namespace {

i64 monotonic_ns()
{
    timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<i64>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

} // namespace

ErrorOr<engine::KernelIrqchipState> KvmEngineVm::kernel_irqchip_state()
{
    engine::KernelIrqchipState state;
    state.pic_primary = to_neutral(TRY(m_vm.irqchip(KVM_IRQCHIP_PIC_MASTER)).chip.pic);
    state.pic_secondary = to_neutral(TRY(m_vm.irqchip(KVM_IRQCHIP_PIC_SLAVE)).chip.pic);
    state.ioapic = to_neutral(TRY(m_vm.irqchip(KVM_IRQCHIP_IOAPIC)).chip.ioapic);
    auto pit = TRY(m_vm.pit());
    i64 now = monotonic_ns();
    for (size_t index = 0; index < state.pit.size(); ++index)
        state.pit[index] = to_neutral(pit.channels[index], now);
    state.pit_flags = pit.flags;
    return state;
}

ErrorOr<void> KvmEngineVm::set_kernel_irqchip_state(engine::KernelIrqchipState const& state)
{
    kvm_irqchip chip {};
    chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
    chip.chip.pic = to_kvm(state.pic_primary);
    TRY(m_vm.set_irqchip(chip));
    chip = {};
    chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    chip.chip.pic = to_kvm(state.pic_secondary);
    TRY(m_vm.set_irqchip(chip));
    chip = {};
    chip.chip_id = KVM_IRQCHIP_IOAPIC;
    chip.chip.ioapic = to_kvm(state.ioapic);
    TRY(m_vm.set_irqchip(chip));
    kvm_pit_state2 pit {};
    i64 now = monotonic_ns();
    for (size_t index = 0; index < state.pit.size(); ++index)
        pit.channels[index] = to_kvm(state.pit[index], now);
    pit.flags = state.pit_flags;
    return m_vm.set_pit(pit);
}

ErrorOr<engine::ClockState> KvmEngineVm::clock() { return engine::ClockState { TRY(m_vm.clock()).clock }; }

ErrorOr<void> KvmEngineVm::set_clock(engine::ClockState const& state)
{
    kvm_clock_data data {};
    data.clock = state.ns;
    return m_vm.set_clock(data);
}

} // namespace kasou::kvm
