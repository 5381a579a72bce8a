// System instructions: port I/O, HLT, interrupt flag, descriptor tables, control registers,
// MSRs, CPUID, time stamp counter, SYSCALL / SYSRET, SWAPGS, INVLPG.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

bool Cpu::write_control(u8 index, u64 value)
{
    switch (index) {
    case 0: {
        value |= cr0::ET;
        if ((value & cr0::PG) && !(value & cr0::PE))
            return fault(Vector::GP, 0);
        if ((value & cr0::PG) && !(m_state.cr0 & cr0::PG) && (m_state.efer & efer::LME)) {
            if (!(m_state.cr4 & cr4::PAE))
                return fault(Vector::GP, 0);
            m_state.efer |= efer::LMA;
        }
        if (!(value & cr0::PG))
            m_state.efer &= ~efer::LMA;
        m_state.cr0 = value;
        break;
    }
    case 2:
        m_state.cr2 = value;
        break;
    case 3:
        m_state.cr3 = value;
        break;
    case 4:
        if (value & ~(cr4::PSE | cr4::PAE | cr4::PGE | cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::FSGSBASE | 0x8 /* DE */ | 0x40 /* MCE */ | 0x100 /* PCE */))
            return fault(Vector::GP, 0);
        if (m_state.long_mode() && !(value & cr4::PAE))
            return fault(Vector::GP, 0);
        m_state.cr4 = value;
        break;
    case 8:
        m_state.cr8 = value & 0xF;
        break;
    default:
        return fault(Vector::UD);
    }
    flush_tlb();
    m_leave_block = true;
    return true;
}

bool Cpu::read_msr(u32 index, u64& value)
{
    auto& s = m_state;
    switch (index) {
    case msr::TSC: value = m_platform.tsc() + static_cast<u64>(s.tsc_offset); return true;
    case msr::APIC_BASE: value = s.apic_base; return true;
    case msr::MTRRCAP: value = 0; return true;
    case msr::SYSENTER_CS: value = s.sysenter_cs; return true;
    case msr::SYSENTER_ESP: value = s.sysenter_esp; return true;
    case msr::SYSENTER_EIP: value = s.sysenter_eip; return true;
    case msr::MISC_ENABLE: value = s.misc_enable; return true;
    case msr::PAT: value = s.pat; return true;
    case msr::MTRR_DEF_TYPE: value = s.mtrr_def_type; return true;
    case msr::EFER: value = s.efer; return true;
    case msr::STAR: value = s.star; return true;
    case msr::LSTAR: value = s.lstar; return true;
    case msr::CSTAR: value = s.cstar; return true;
    case msr::SFMASK: value = s.sfmask; return true;
    case msr::FS_BASE: value = s.segments[4].base; return true;
    case msr::GS_BASE: value = s.segments[5].base; return true;
    case msr::KERNEL_GS_BASE: value = s.kernel_gs_base; return true;
    case msr::TSC_AUX: value = s.tsc_aux; return true;
    default: return m_platform.read_msr(index, value);
    }
}

bool Cpu::write_msr(u32 index, u64 value)
{
    auto& s = m_state;
    switch (index) {
    case msr::TSC: s.tsc_offset = static_cast<i64>(value - m_platform.tsc()); return true;
    case msr::APIC_BASE: s.apic_base = value; return m_platform.write_msr(index, value) || true;
    case msr::SYSENTER_CS: s.sysenter_cs = value; return true;
    case msr::SYSENTER_ESP: s.sysenter_esp = value; return true;
    case msr::SYSENTER_EIP: s.sysenter_eip = value; return true;
    case msr::MISC_ENABLE: s.misc_enable = value; return true;
    case msr::PAT: s.pat = value; return true;
    case msr::MTRR_DEF_TYPE: s.mtrr_def_type = value; return true;
    case msr::EFER: {
        if (value & ~(efer::SCE | efer::LME | efer::LMA | efer::NXE))
            return false;
        // LMA is the CPU's to set; LME cannot change while paging is on.
        u64 const lma = s.efer & efer::LMA;
        if (s.paging() && ((value ^ s.efer) & efer::LME))
            return false;
        s.efer = (value & ~efer::LMA) | lma;
        flush_tlb();
        return true;
    }
    case msr::STAR: s.star = value; return true;
    case msr::LSTAR: s.lstar = value; return true;
    case msr::CSTAR: s.cstar = value; return true;
    case msr::SFMASK: s.sfmask = value; return true;
    case msr::FS_BASE: s.segments[4].base = value; return true;
    case msr::GS_BASE: s.segments[5].base = value; return true;
    case msr::KERNEL_GS_BASE: s.kernel_gs_base = value; return true;
    case msr::TSC_AUX: s.tsc_aux = value & 0xFFFF'FFFF; return true;
    default: return m_platform.write_msr(index, value);
    }
}

void Cpu::cpuid()
{
    auto& gpr = m_state.gpr;
    u32 const function = static_cast<u32>(gpr[0]);
    u32 const index = static_cast<u32>(gpr[1]);
    arch::x86_64::CpuidEntry const* found = nullptr;
    for (auto const& entry : m_cpuid) {
        if (entry.function == function && (!entry.significant_index || entry.index == index)) {
            found = &entry;
            break;
        }
    }
    arch::x86_64::CpuidEntry const empty {};
    if (!found)
        found = &empty;
    write_gpr(0, 4, found->eax);
    write_gpr(3, 4, found->ebx);
    write_gpr(1, 4, found->ecx);
    write_gpr(2, 4, found->edx);
}

bool Cpu::execute_system(DecodedInstruction const& instruction)
{
    auto const mnemonic = instruction.mnemonic;
    auto& s = m_state;
    auto& gpr = s.gpr;
    u8 const cpl = s.cpl();
    u64 const next = next_rip(instruction);
    auto privileged = [&] { return cpl == 0 || fault(Vector::GP, 0); };
    bool const in_64 = s.long_mode() && s.segments[1].l;

    switch (mnemonic) {
    case ZYDIS_MNEMONIC_IN: {
        u64 port;
        if (!read_operand(instruction, 1, port))
            return false;
        u64 value;
        u8 const size = instruction.operands[0].size;
        if (!port_in(static_cast<u16>(port), size, value))
            return false;
        write_gpr(0, size, value);
        break;
    }
    case ZYDIS_MNEMONIC_OUT: {
        u64 port, value;
        if (!read_operand(instruction, 0, port) || !read_operand(instruction, 1, value))
            return false;
        if (!port_out(static_cast<u16>(port), instruction.operands[1].size, value))
            return false;
        break;
    }
    case ZYDIS_MNEMONIC_HLT:
        if (!privileged())
            return false;
        s.rip = next;
        s.halted = true;
        return true;
    case ZYDIS_MNEMONIC_CLI:
    case ZYDIS_MNEMONIC_STI:
        if (s.protected_mode() && cpl > ((s.rflags >> 12) & 3))
            return fault(Vector::GP, 0);
        if (mnemonic == ZYDIS_MNEMONIC_CLI) {
            s.rflags &= ~rflags::IF;
        } else {
            if (!(s.rflags & rflags::IF))
                s.interrupt_shadow = 1;
            s.rflags |= rflags::IF;
            m_leave_block = true;
        }
        break;
    case ZYDIS_MNEMONIC_LGDT:
    case ZYDIS_MNEMONIC_LIDT: {
        if (!privileged())
            return false;
        Operand const& operand = instruction.operands[0];
        u64 const offset = effective_address(instruction, operand);
        u64 limit, base;
        if (!read_memory(operand.segment, offset, 2, limit) || !read_memory(operand.segment, offset + 2, in_64 ? 8 : 4, base))
            return false;
        if (!in_64 && instruction.width == 2)
            base &= 0xFF'FFFF;
        DescriptorTable& table = mnemonic == ZYDIS_MNEMONIC_LGDT ? s.gdt : s.idt;
        table = { base, static_cast<u16>(limit) };
        break;
    }
    case ZYDIS_MNEMONIC_SGDT:
    case ZYDIS_MNEMONIC_SIDT: {
        Operand const& operand = instruction.operands[0];
        u64 const offset = effective_address(instruction, operand);
        DescriptorTable const& table = mnemonic == ZYDIS_MNEMONIC_SGDT ? s.gdt : s.idt;
        if (!write_memory(operand.segment, offset, 2, table.limit) || !write_memory(operand.segment, offset + 2, in_64 ? 8 : 4, table.base))
            return false;
        break;
    }
    case ZYDIS_MNEMONIC_LTR:
    case ZYDIS_MNEMONIC_LLDT: {
        if (!privileged())
            return false;
        u64 selector;
        if (!read_operand(instruction, 0, selector))
            return false;
        Segment& target = mnemonic == ZYDIS_MNEMONIC_LTR ? s.tr : s.ldt;
        if ((selector & ~3) == 0 && mnemonic == ZYDIS_MNEMONIC_LLDT) {
            target = {};
            target.unusable = true;
            break;
        }
        u64 low, high;
        if (!read_descriptor(static_cast<u16>(selector), low, high))
            return false;
        u8 const type = (low >> 40) & 0xF;
        bool const wanted = mnemonic == ZYDIS_MNEMONIC_LTR ? (type == 0x9 || type == 0x1) : type == 0x2;
        if (((low >> 44) & 1) || !wanted)
            return fault(Vector::GP, static_cast<u32>(selector & ~3));
        if (!((low >> 47) & 1))
            return fault(Vector::NP, static_cast<u32>(selector & ~3));
        Segment loaded {};
        loaded.selector = static_cast<u16>(selector);
        loaded.base = ((low >> 16) & 0xFF'FFFF) | (((low >> 56) & 0xFF) << 24) | (high << 32);
        u32 limit = static_cast<u32>((low & 0xFFFF) | (((low >> 48) & 0xF) << 16));
        loaded.g = (low >> 55) & 1;
        loaded.limit = loaded.g ? (limit << 12) | 0xFFF : limit;
        loaded.type = type;
        loaded.present = 1;
        if (mnemonic == ZYDIS_MNEMONIC_LTR) {
            // Mark the TSS busy in the GDT, as the CPU does.
            loaded.type |= 2;
            if (!write_linear(s.gdt.base + (selector & ~u64 { 7 }), 8, low | (u64 { 2 } << 40), true))
                return false;
        }
        target = loaded;
        break;
    }
    case ZYDIS_MNEMONIC_STR:
    case ZYDIS_MNEMONIC_SLDT:
        if (!write_operand(instruction, 0, mnemonic == ZYDIS_MNEMONIC_STR ? s.tr.selector : s.ldt.selector))
            return false;
        break;
    case ZYDIS_MNEMONIC_MOV: {
        if (!privileged())
            return false;
        Operand const& destination = instruction.operands[0];
        Operand const& source = instruction.operands[1];
        if (destination.kind == Operand::Kind::Control) {
            if (!write_control(destination.reg, read_gpr(source)))
                return false;
        } else if (source.kind == Operand::Kind::Control) {
            u64 const values[] = { s.cr0, 0, s.cr2, s.cr3, s.cr4, 0, 0, 0, s.cr8 };
            if (source.reg > 8 || source.reg == 1 || (source.reg >= 5 && source.reg <= 7))
                return fault(Vector::UD);
            write_gpr(destination.reg, destination.size, values[source.reg]);
        } else if (destination.kind == Operand::Kind::Debug) {
            if (destination.reg > 7)
                return fault(Vector::UD);
            s.dr[destination.reg] = read_gpr(source);
        } else {
            if (source.reg > 7)
                return fault(Vector::UD);
            write_gpr(destination.reg, destination.size, s.dr[source.reg]);
        }
        break;
    }
    case ZYDIS_MNEMONIC_LMSW: {
        if (!privileged())
            return false;
        u64 value;
        if (!read_operand(instruction, 0, value))
            return false;
        // LMSW sets PE but never clears it, and touches only MP, EM and TS besides.
        if (!write_control(0, (s.cr0 & ~u64 { 0xE }) | (value & 0xF) | (s.cr0 & cr0::PE)))
            return false;
        break;
    }
    case ZYDIS_MNEMONIC_SMSW:
        if (!write_operand(instruction, 0, s.cr0 & 0xFFFF))
            return false;
        break;
    case ZYDIS_MNEMONIC_CLTS:
        if (!privileged())
            return false;
        s.cr0 &= ~cr0::TS;
        break;
    case ZYDIS_MNEMONIC_INVLPG:
        if (!privileged())
            return false;
        invalidate_page(linear_address(instruction.operands[0].segment, effective_address(instruction, instruction.operands[0])));
        break;
    case ZYDIS_MNEMONIC_WBINVD:
    case ZYDIS_MNEMONIC_INVD:
        if (!privileged())
            return false;
        break;
    case ZYDIS_MNEMONIC_RDMSR: {
        if (!privileged())
            return false;
        u64 value;
        if (!read_msr(static_cast<u32>(gpr[1]), value))
            return fault(Vector::GP, 0);
        write_gpr(0, 4, value);
        write_gpr(2, 4, value >> 32);
        break;
    }
    case ZYDIS_MNEMONIC_WRMSR:
        if (!privileged())
            return false;
        if (!write_msr(static_cast<u32>(gpr[1]), (gpr[2] << 32) | (gpr[0] & 0xFFFF'FFFF)))
            return fault(Vector::GP, 0);
        m_leave_block = true;
        break;
    case ZYDIS_MNEMONIC_CPUID:
        cpuid();
        break;
    case ZYDIS_MNEMONIC_RDTSC:
    case ZYDIS_MNEMONIC_RDTSCP: {
        u64 const tsc = m_platform.tsc() + static_cast<u64>(s.tsc_offset);
        write_gpr(0, 4, tsc);
        write_gpr(2, 4, tsc >> 32);
        if (mnemonic == ZYDIS_MNEMONIC_RDTSCP)
            write_gpr(1, 4, s.tsc_aux);
        break;
    }
    case ZYDIS_MNEMONIC_SWAPGS:
        if (!in_64)
            return fault(Vector::UD);
        if (!privileged())
            return false;
        std::swap(s.segments[5].base, s.kernel_gs_base);
        break;
    case ZYDIS_MNEMONIC_SYSCALL: {
        if (!in_64 || !(s.efer & efer::SCE))
            return fault(Vector::UD);
        gpr[1] = next;
        gpr[11] = s.full_rflags() & ~rflags::RF;
        u16 const selector = static_cast<u16>(s.star >> 32);
        Segment code {};
        code.selector = selector & ~3;
        code.type = 0xB;
        code.s = 1;
        code.present = 1;
        code.l = 1;
        code.g = 1;
        code.limit = 0xFFFF'FFFF;
        Segment stack {};
        stack.selector = static_cast<u16>((selector + 8) & ~3);
        stack.type = 0x3;
        stack.s = 1;
        stack.present = 1;
        stack.db = 1;
        stack.g = 1;
        stack.limit = 0xFFFF'FFFF;
        s.segments[1] = code;
        s.segments[2] = stack;
        s.set_full_rflags(s.full_rflags() & ~s.sfmask & ~rflags::RF);
        s.rip = s.lstar;
        m_leave_block = true;
        return true;
    }
    case ZYDIS_MNEMONIC_SYSRET: {
        if (!in_64 || !(s.efer & efer::SCE))
            return fault(Vector::UD);
        if (!privileged())
            return false;
        bool const to_64 = instruction.width == 8;
        u16 const base = static_cast<u16>(s.star >> 48);
        if (to_64 && static_cast<u64>(static_cast<i64>(gpr[1] << 16) >> 16) != gpr[1])
            return fault(Vector::GP, 0);
        Segment code {};
        code.selector = static_cast<u16>((to_64 ? base + 16 : base) | 3);
        code.type = 0xB;
        code.s = 1;
        code.present = 1;
        code.dpl = 3;
        code.l = to_64;
        code.db = !to_64;
        code.g = 1;
        code.limit = 0xFFFF'FFFF;
        Segment stack {};
        stack.selector = static_cast<u16>((base + 8) | 3);
        stack.type = 0x3;
        stack.s = 1;
        stack.present = 1;
        stack.dpl = 3;
        stack.db = 1;
        stack.g = 1;
        stack.limit = 0xFFFF'FFFF;
        s.set_full_rflags((gpr[11] & rflags::WRITABLE & ~(rflags::RF | rflags::VM)) | rflags::RESERVED1);
        s.segments[1] = code;
        s.segments[2] = stack;
        s.rip = to_64 ? gpr[1] : (gpr[1] & 0xFFFF'FFFF);
        m_leave_block = true;
        return true;
    }
    case ZYDIS_MNEMONIC_UD0:
    case ZYDIS_MNEMONIC_UD1:
    case ZYDIS_MNEMONIC_UD2:
        return fault(Vector::UD);
    default:
        raise_undefined(instruction);
        return false;
    }
    s.rip = next;
    return true;
}

} // namespace kasou::emu::cpu
