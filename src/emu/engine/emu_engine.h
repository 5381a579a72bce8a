#pragma once

#include <memory>

#include "engine/engine.h"

namespace kasou::emu {

// The execution engine that runs guests on kasou's software CPU (src/emu/cpu): no /dev/kvm, no
// hardware virtualization. Its VMs keep the local APICs (emu::Lapic) and leave the PIC, IOAPIC
// and PIT to the VMM (InterruptControllers::Split only). Its CPUID table says exactly what the
// software CPU implements.
class EmuEngine final : public engine::Engine {
public:
    EmuEngine();

    char const* name() const override { return "emu"; }
    arch::x86_64::CpuidTable const& supported_cpuid() const override { return m_cpuid; }
    u32 max_vcpus() const override { return 64; }
    bool supports(engine::Capability capability) const override;
    ErrorOr<std::unique_ptr<engine::Vm>> create_vm(engine::VmOptions const& options) const override;

    // The CPUID leaves of the software CPU (before the VMM adds topology and hides features).
    static arch::x86_64::CpuidTable implemented_cpuid();

private:
    arch::x86_64::CpuidTable m_cpuid;
};

} // namespace kasou::emu
