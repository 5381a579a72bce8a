#pragma once

#include <optional>
#include <string_view>

namespace kasou::vmm {

// Where the PC's interrupt controllers and timer live (kasou run --irqchip).
// Split: KVM keeps the local APICs; the PIC pair, IOAPIC and PIT are kasou's own models (src/emu),
// so creating and destroying a VM skips the in-kernel ones (KVM_CAP_SPLIT_IRQCHIP).
// Kernel: KVM's in-kernel PIC, IOAPIC and PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2).
enum class IrqchipMode { Split, Kernel };

inline std::optional<IrqchipMode> parse_irqchip_mode(std::string_view text)
{
    if (text == "split")
        return IrqchipMode::Split;
    if (text == "kernel")
        return IrqchipMode::Kernel;
    return std::nullopt;
}

inline char const* irqchip_mode_name(IrqchipMode mode) { return mode == IrqchipMode::Split ? "split" : "kernel"; }

} // namespace kasou::vmm
