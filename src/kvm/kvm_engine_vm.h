#pragma once

#include <span>

#include "engine/vm.h"
#include "kvm/vm.h"

namespace kasou::kvm {

// The engine VM on KVM: a kvm::Vm whose calls take the engine's neutral types. `msr_indices` (the
// host's MSR index list, owned by the KvmEngine) outlives the VM and is handed to each vCPU for
// its whole-state reads.
class KvmEngineVm final : public engine::Vm {
public:
    KvmEngineVm(kvm::Vm vm, std::span<u32 const> msr_indices)
        : m_vm(std::move(vm))
        , m_msr_indices(msr_indices)
    {
    }

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
    ErrorOr<engine::KernelIrqchipState> kernel_irqchip_state() override;
    ErrorOr<void> set_kernel_irqchip_state(engine::KernelIrqchipState const& state) override;
    ErrorOr<engine::ClockState> clock() override;
    ErrorOr<void> set_clock(engine::ClockState const& state) override;

private:
    kvm::Vm m_vm;
    std::span<u32 const> m_msr_indices;
};

} // namespace kasou::kvm
