#include "kvm/kvm_engine.h"

#include <fmt/format.h>

#include "base/try.h"
#include "kvm/kvm_engine_vcpu.h"
#include "kvm/kvm_engine_vm.h"
#include "kvm/state_conversion.h"
#include "kvm/vm.h"

namespace kasou::kvm {

namespace {

// Addresses KVM needs on Intel hosts for real-mode emulation: three pages below the BIOS area,
// inside the MMIO hole, where nothing else lives (the same places QEMU and Firecracker use).
constexpr u64 KVM_TSS_ADDRESS = 0xFFFB'D000;
constexpr u64 KVM_IDENTITY_MAP_ADDRESS = 0xFFFB'C000;
// A split irqchip's userspace IOAPIC has the PC's 24 pins.
constexpr u32 IOAPIC_PINS = 24;

} // namespace

KvmEngine::KvmEngine(System system)
    : m_system(std::move(system))
    , m_supported_cpuid(to_neutral(m_system.supported_cpuid()))
{
}

ErrorOr<std::unique_ptr<KvmEngine>> KvmEngine::open(char const* path)
{
    auto system = TRY(System::open(path));
    for (auto [capability, name] : { std::pair { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" }, { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
             { KVM_CAP_PIT2, "KVM_CAP_PIT2" }, { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" } }) {
        if (!system.check_extension(capability))
            return make_error(ErrorKind::Unsupported, fmt::format("this host's KVM lacks {}, which kasou needs", name));
    }
    KvmEngineVcpu::install_kick_handler();
    return std::unique_ptr<KvmEngine>(new KvmEngine(std::move(system)));
}

u32 KvmEngine::max_vcpus() const { return static_cast<u32>(m_system.max_vcpus()); }

bool KvmEngine::supports(engine::Capability capability) const
{
    switch (capability) {
    case engine::Capability::SplitIrqchip:
        return m_system.check_extension(KVM_CAP_SPLIT_IRQCHIP) > 0;
    }
    return false;
}

ErrorOr<std::unique_ptr<engine::Vm>> KvmEngine::create_vm(engine::VmOptions const& options) const
{
    auto vm = TRY(m_system.create_vm());
    TRY(vm.set_tss_address(KVM_TSS_ADDRESS));
    TRY(vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDRESS));
    switch (options.interrupt_controllers) {
    case engine::InterruptControllers::InKernel:
        TRY(vm.create_irqchip());
        TRY(vm.create_pit());
        break;
    case engine::InterruptControllers::Split:
        if (!supports(engine::Capability::SplitIrqchip))
            return make_error(ErrorKind::Unsupported, "this host's KVM lacks KVM_CAP_SPLIT_IRQCHIP, which a split irqchip needs");
        TRY(vm.enable_split_irqchip(IOAPIC_PINS));
        break;
    }
    return std::make_unique<KvmEngineVm>(std::move(vm), m_system.msr_index_list());
}

} // namespace kasou::kvm
