#pragma once

#include <memory>

#include "arch/x86_64/cpu_state.h"
#include "base/error.h"
#include "base/types.h"
#include "engine/vm.h"

namespace kasou::engine {

// Optional features an engine may offer; VmOptions asks for them.
enum class Capability {
    SplitIrqchip, // VmOptions::interrupt_controllers = InterruptControllers::Split
};

// An execution engine: what runs guest code (KVM, or a software CPU). Opened once per machine;
// its answers (supported CPUID, vCPU limit, capabilities) do not change while it is open. It
// outlives every VM it creates. The VMM knows engines only through this interface, Vm and Vcpu.
class Engine {
public:
    virtual ~Engine() = default;

    // "KVM", for messages.
    virtual char const* name() const = 0;
    // The CPUID leaves the engine can present to a guest, before the VMM shapes them.
    virtual arch::x86_64::CpuidTable const& supported_cpuid() const = 0;
    virtual u32 max_vcpus() const = 0;
    virtual bool supports(Capability capability) const = 0;

    // A VM with the interrupt controllers `options` asks for, and no memory or vCPUs yet.
    virtual ErrorOr<std::unique_ptr<Vm>> create_vm(VmOptions const& options) const = 0;
};

} // namespace kasou::engine
