#pragma once

#include <memory>

#include "engine/engine.h"
#include "kvm/system.h"

namespace kasou::kvm {

// The execution engine on /dev/kvm. open() checks the capabilities every kasou VM needs (in-kernel
// irqchip, user memory, PIT2, immediate exit) and installs the vCPU kick signal's handler, so a
// KvmEngine that exists can run any VM kasou builds. Its VMs get the addresses KVM needs on Intel
// hosts for real-mode emulation and the interrupt controllers VmOptions asks for.
class KvmEngine final : public engine::Engine {
public:
    static ErrorOr<std::unique_ptr<KvmEngine>> open(char const* path = "/dev/kvm");

    char const* name() const override { return "KVM"; }
    arch::x86_64::CpuidTable const& supported_cpuid() const override { return m_supported_cpuid; }
    u32 max_vcpus() const override;
    bool supports(engine::Capability capability) const override;
    ErrorOr<std::unique_ptr<engine::Vm>> create_vm(engine::VmOptions const& options) const override;

private:
    explicit KvmEngine(System system);

    System m_system;
    arch::x86_64::CpuidTable m_supported_cpuid;
};

} // namespace kasou::kvm
