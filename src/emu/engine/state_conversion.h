#pragma once

#include "arch/x86_64/cpu_state.h"
#include "emu/cpu/cpu_state.h"

// Between the software CPU's own state and the engine-neutral arch::x86_64 types.
namespace kasou::emu {

arch::x86_64::GeneralRegisters to_general_registers(cpu::CpuState const& state);
void from_general_registers(arch::x86_64::GeneralRegisters const& registers, cpu::CpuState& state);
arch::x86_64::SystemRegisters to_system_registers(cpu::CpuState const& state);
void from_system_registers(arch::x86_64::SystemRegisters const& registers, cpu::CpuState& state);
// The whole state but the LAPIC page and the MP state, which the vCPU adds.
arch::x86_64::VcpuState to_vcpu_state(cpu::CpuState const& state);
void from_vcpu_state(arch::x86_64::VcpuState const& vcpu_state, cpu::CpuState& state);

} // namespace kasou::emu
