#include "vmm/vcpu_diagnostics.h"

#include <array>

#include <fmt/format.h>

namespace kasou::vmm {

namespace {

constexpr u64 CR0_PE = 1u << 0;
constexpr u64 CR0_PG = 1u << 31;
constexpr u64 EFER_LMA = 1u << 10;
constexpr size_t INSTRUCTION_BYTES = 16;

char const* cpu_mode(arch::x86_64::SystemRegisters const& sregs)
{
    if (sregs.efer & EFER_LMA)
        return sregs.cs.l ? "64-bit mode" : "compatibility mode";
    if (sregs.cr0 & CR0_PE)
        return "protected mode";
    return "real mode";
}

} // namespace

std::string describe_vcpu_position(engine::Vcpu const& vcpu, memory::GuestMemory const& memory)
{
    auto regs = vcpu.registers();
    auto sregs = vcpu.system_registers();
    if (!regs || !sregs)
        return "registers unreadable";
    // KVM on AMD SVM puts a vCPU that shut down back into its reset state before returning.
    if (regs->rip == 0xFFF0 && sregs->cs.base == 0xFFFF'0000)
        return "registers at the reset vector: this host's KVM resets a vCPU that shuts down (AMD SVM), so the faulting instruction is not known";
    u64 linear = sregs->cs.base + regs->rip;
    std::string text = fmt::format("RIP {:#x} (CS {:#x} base {:#x}, {}, paging {})", regs->rip, sregs->cs.selector,
        sregs->cs.base, cpu_mode(*sregs), (sregs->cr0 & CR0_PG) ? "on" : "off");
    u64 physical = linear;
    if (sregs->cr0 & CR0_PG) {
        auto translated = vcpu.translate(linear);
        if (!translated)
            return text + "; instruction bytes unreadable (" + translated.error().to_string() + ")";
        physical = *translated;
    }
    std::array<u8, INSTRUCTION_BYTES> bytes {};
    size_t count = INSTRUCTION_BYTES;
    while (count > 0 && !memory.contains(physical, count))
        --count;
    if (count == 0)
        return text + fmt::format("; instruction bytes unreadable (guest-physical {:#x} is outside RAM)", physical);
    (void)memory.read(physical, std::span(bytes.data(), count));
    text += "; bytes at RIP:";
    for (size_t i = 0; i < count; ++i)
        text += fmt::format(" {:02x}", bytes[i]);
    return text;
}

} // namespace kasou::vmm
