#include "emu/engine/state_conversion.h"

#include <array>

namespace kasou::emu {

namespace {

// GeneralRegisters' order mapped onto encoding numbers: rax rbx rcx rdx rsi rdi rsp rbp r8-r15.
constexpr std::array<u8, 16> ENCODING = { 0, 3, 1, 2, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15 };

template<class Registers>
auto fields(Registers& r)
{
    return std::array { &r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp, &r.r8, &r.r9, &r.r10, &r.r11, &r.r12, &r.r13, &r.r14,
        &r.r15 };
}

struct MsrField {
    u32 index;
    u64 cpu::CpuState::*field;
};

constexpr MsrField MSR_FIELDS[] = {
    { cpu::msr::STAR, &cpu::CpuState::star },
    { cpu::msr::LSTAR, &cpu::CpuState::lstar },
    { cpu::msr::CSTAR, &cpu::CpuState::cstar },
    { cpu::msr::SFMASK, &cpu::CpuState::sfmask },
    { cpu::msr::KERNEL_GS_BASE, &cpu::CpuState::kernel_gs_base },
    { cpu::msr::TSC_AUX, &cpu::CpuState::tsc_aux },
    { cpu::msr::SYSENTER_CS, &cpu::CpuState::sysenter_cs },
    { cpu::msr::SYSENTER_ESP, &cpu::CpuState::sysenter_esp },
    { cpu::msr::SYSENTER_EIP, &cpu::CpuState::sysenter_eip },
    { cpu::msr::PAT, &cpu::CpuState::pat },
    { cpu::msr::MISC_ENABLE, &cpu::CpuState::misc_enable },
    { cpu::msr::MTRR_DEF_TYPE, &cpu::CpuState::mtrr_def_type },
};

} // namespace

arch::x86_64::GeneralRegisters to_general_registers(cpu::CpuState const& state)
{
    arch::x86_64::GeneralRegisters registers;
    auto out = fields(registers);
    for (size_t i = 0; i < 16; ++i)
        *out[i] = state.gpr[ENCODING[i]];
    registers.rip = state.rip;
    registers.rflags = state.full_rflags();
    return registers;
}

void from_general_registers(arch::x86_64::GeneralRegisters const& registers, cpu::CpuState& state)
{
    auto in = fields(registers);
    for (size_t i = 0; i < 16; ++i)
        state.gpr[ENCODING[i]] = *in[i];
    state.rip = registers.rip;
    state.set_full_rflags(registers.rflags);
}

arch::x86_64::SystemRegisters to_system_registers(cpu::CpuState const& state)
{
    arch::x86_64::SystemRegisters registers;
    registers.es = state.segments[0];
    registers.cs = state.segments[1];
    registers.ss = state.segments[2];
    registers.ds = state.segments[3];
    registers.fs = state.segments[4];
    registers.gs = state.segments[5];
    registers.tr = state.tr;
    registers.ldt = state.ldt;
    registers.gdt = state.gdt;
    registers.idt = state.idt;
    registers.cr0 = state.cr0;
    registers.cr2 = state.cr2;
    registers.cr3 = state.cr3;
    registers.cr4 = state.cr4;
    registers.cr8 = state.cr8;
    registers.efer = state.efer;
    registers.apic_base = state.apic_base;
    return registers;
}

void from_system_registers(arch::x86_64::SystemRegisters const& registers, cpu::CpuState& state)
{
    state.segments = { registers.es, registers.cs, registers.ss, registers.ds, registers.fs, registers.gs };
    state.tr = registers.tr;
    state.ldt = registers.ldt;
    state.gdt = registers.gdt;
    state.idt = registers.idt;
    state.cr0 = registers.cr0;
    state.cr2 = registers.cr2;
    state.cr3 = registers.cr3;
    state.cr4 = registers.cr4;
    state.cr8 = registers.cr8;
    state.efer = registers.efer;
    if (registers.apic_base)
        state.apic_base = registers.apic_base;
}

arch::x86_64::VcpuState to_vcpu_state(cpu::CpuState const& state)
{
    arch::x86_64::VcpuState result;
    result.registers = to_general_registers(state);
    result.system = to_system_registers(state);
    for (auto const& field : MSR_FIELDS)
        result.msrs.push_back({ field.index, state.*field.field });
    result.msrs.push_back({ cpu::msr::TSC, static_cast<u64>(state.tsc_offset) });
    result.debug.address = { state.dr[0], state.dr[1], state.dr[2], state.dr[3] };
    result.debug.dr6 = state.dr[6];
    result.debug.dr7 = state.dr[7];
    result.events.interrupt.shadow = state.interrupt_shadow;
    if (state.halted)
        result.mp_state = arch::x86_64::MpState::Halted;
    return result;
}

void from_vcpu_state(arch::x86_64::VcpuState const& vcpu_state, cpu::CpuState& state)
{
    from_general_registers(vcpu_state.registers, state);
    from_system_registers(vcpu_state.system, state);
    for (auto const& msr : vcpu_state.msrs) {
        for (auto const& field : MSR_FIELDS) {
            if (field.index == msr.index)
                state.*field.field = msr.value;
        }
        if (msr.index == cpu::msr::TSC)
            state.tsc_offset = static_cast<i64>(msr.value);
    }
    for (size_t i = 0; i < 4; ++i)
        state.dr[i] = vcpu_state.debug.address[i];
    state.dr[6] = vcpu_state.debug.dr6;
    state.dr[7] = vcpu_state.debug.dr7;
    state.interrupt_shadow = vcpu_state.events.interrupt.shadow ? 1 : 0;
    state.halted = vcpu_state.mp_state == arch::x86_64::MpState::Halted;
}

} // namespace kasou::emu
