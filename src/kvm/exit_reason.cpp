#include "kvm/exit_reason.h"

#include <linux/kvm.h>

#include <fmt/format.h>

namespace kasou::kvm {

std::string exit_reason_name(u32 reason)
{
    char const* name = nullptr;
    switch (reason) {
    case KVM_EXIT_UNKNOWN: name = "KVM_EXIT_UNKNOWN"; break;
    case KVM_EXIT_EXCEPTION: name = "KVM_EXIT_EXCEPTION"; break;
    case KVM_EXIT_IO: name = "KVM_EXIT_IO"; break;
    case KVM_EXIT_HYPERCALL: name = "KVM_EXIT_HYPERCALL"; break;
    case KVM_EXIT_DEBUG: name = "KVM_EXIT_DEBUG"; break;
    case KVM_EXIT_HLT: name = "KVM_EXIT_HLT"; break;
    case KVM_EXIT_MMIO: name = "KVM_EXIT_MMIO"; break;
    case KVM_EXIT_IRQ_WINDOW_OPEN: name = "KVM_EXIT_IRQ_WINDOW_OPEN"; break;
    case KVM_EXIT_SHUTDOWN: name = "KVM_EXIT_SHUTDOWN"; break;
    case KVM_EXIT_FAIL_ENTRY: name = "KVM_EXIT_FAIL_ENTRY"; break;
    case KVM_EXIT_INTR: name = "KVM_EXIT_INTR"; break;
    case KVM_EXIT_SET_TPR: name = "KVM_EXIT_SET_TPR"; break;
    case KVM_EXIT_TPR_ACCESS: name = "KVM_EXIT_TPR_ACCESS"; break;
    case KVM_EXIT_NMI: name = "KVM_EXIT_NMI"; break;
    case KVM_EXIT_INTERNAL_ERROR: name = "KVM_EXIT_INTERNAL_ERROR"; break;
    case KVM_EXIT_OSI: name = "KVM_EXIT_OSI"; break;
    case KVM_EXIT_WATCHDOG: name = "KVM_EXIT_WATCHDOG"; break;
    case KVM_EXIT_EPR: name = "KVM_EXIT_EPR"; break;
    case KVM_EXIT_SYSTEM_EVENT: name = "KVM_EXIT_SYSTEM_EVENT"; break;
    case KVM_EXIT_IOAPIC_EOI: name = "KVM_EXIT_IOAPIC_EOI"; break;
    case KVM_EXIT_HYPERV: name = "KVM_EXIT_HYPERV"; break;
    case KVM_EXIT_X86_RDMSR: name = "KVM_EXIT_X86_RDMSR"; break;
    case KVM_EXIT_X86_WRMSR: name = "KVM_EXIT_X86_WRMSR"; break;
    case KVM_EXIT_DIRTY_RING_FULL: name = "KVM_EXIT_DIRTY_RING_FULL"; break;
    case KVM_EXIT_X86_BUS_LOCK: name = "KVM_EXIT_X86_BUS_LOCK"; break;
    default: break;
    }
    if (!name)
        return fmt::format("exit reason {}", reason);
    return fmt::format("{} ({})", name, reason);
}

} // namespace kasou::kvm
