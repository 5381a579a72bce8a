#include "emu/engine/emu_engine.h"

#include <cstring>

#include "emu/engine/emu_vm.h"

namespace kasou::emu {

namespace {

// CPUID feature bits (Intel SDM vol. 2A, CPUID; AMD APM vol. 3, E.4).
constexpr u32 LEAF1_EDX_PSE = 1u << 3;
constexpr u32 LEAF1_EDX_TSC = 1u << 4;
constexpr u32 LEAF1_EDX_MSR = 1u << 5;
constexpr u32 LEAF1_EDX_PAE = 1u << 6;
constexpr u32 LEAF1_EDX_CX8 = 1u << 8;
constexpr u32 LEAF1_EDX_APIC = 1u << 9;
constexpr u32 LEAF1_EDX_PGE = 1u << 13;
constexpr u32 LEAF1_EDX_CMOV = 1u << 15;
constexpr u32 LEAF1_EDX_PAT = 1u << 16;
constexpr u32 LEAF1_ECX_CX16 = 1u << 13;
constexpr u32 LEAF1_ECX_X2APIC = 1u << 21;
constexpr u32 LEAF1_ECX_POPCNT = 1u << 23;
constexpr u32 EXT1_EDX_SYSCALL = 1u << 11;
constexpr u32 EXT1_EDX_NX = 1u << 20;
constexpr u32 EXT1_EDX_PAGE1GB = 1u << 26;
constexpr u32 EXT1_EDX_RDTSCP = 1u << 27;
constexpr u32 EXT1_EDX_LM = 1u << 29;
constexpr u32 EXT1_ECX_LAHF = 1u << 0;
constexpr u32 EXT1_ECX_ABM = 1u << 5;

u32 text(char const* four)
{
    u32 value;
    std::memcpy(&value, four, 4);
    return value;
}

} // namespace

EmuEngine::EmuEngine()
    : m_cpuid(implemented_cpuid())
{
}

arch::x86_64::CpuidTable EmuEngine::implemented_cpuid()
{
    using arch::x86_64::CpuidEntry;
    // Vendor "KasouSoftCPU": a CPU of its own, so no guest applies another vendor's errata.
    return {
        CpuidEntry { 0, 0, false, 0xB, text("Kaso"), text("tCPU"), text("uSof") },
        CpuidEntry { 1, 0, false, 0x0000'06F1, 8u << 8, LEAF1_ECX_CX16 | LEAF1_ECX_X2APIC | LEAF1_ECX_POPCNT,
            LEAF1_EDX_PSE | LEAF1_EDX_TSC | LEAF1_EDX_MSR | LEAF1_EDX_PAE | LEAF1_EDX_CX8 | LEAF1_EDX_APIC | LEAF1_EDX_PGE
                | LEAF1_EDX_CMOV | LEAF1_EDX_PAT },
        CpuidEntry { 7, 0, true, 0, 0, 0, 0 },
        CpuidEntry { 0x8000'0000, 0, false, 0x8000'0008, 0, 0, 0 },
        CpuidEntry { 0x8000'0001, 0, false, 0, 0, EXT1_ECX_LAHF | EXT1_ECX_ABM,
            EXT1_EDX_SYSCALL | EXT1_EDX_NX | EXT1_EDX_PAGE1GB | EXT1_EDX_RDTSCP | EXT1_EDX_LM },
        CpuidEntry { 0x8000'0008, 0, false, 40 | (48u << 8), 0, 0, 0 },
    };
}

bool EmuEngine::supports(engine::Capability capability) const
{
    switch (capability) {
    case engine::Capability::SplitIrqchip:
        return true;
    }
    return false;
}

ErrorOr<std::unique_ptr<engine::Vm>> EmuEngine::create_vm(engine::VmOptions const& options) const
{
    if (options.interrupt_controllers != engine::InterruptControllers::Split)
        return make_error(ErrorKind::Unsupported, "the software CPU keeps only the local APICs: use --irqchip split");
    return EmuVm::create();
}

} // namespace kasou::emu
