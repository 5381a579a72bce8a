// Exceptions and interrupts through the IVT / IDT, IRET, segment loads and far transfers.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

using arch::x86_64::segment_from_descriptor;

namespace {

bool has_error_code(u8 vector)
{
    switch (static_cast<Vector>(vector)) {
    case Vector::DF:
    case Vector::TS:
    case Vector::NP:
    case Vector::SS:
    case Vector::GP:
    case Vector::PF:
    case Vector::AC:
        return true;
    default:
        return false;
    }
}

void real_mode_segment(Segment& segment, u16 selector)
{
    segment.selector = selector;
    segment.base = u64 { selector } << 4;
}

} // namespace

bool Cpu::fault(Vector vector, u32 error_code)
{
    u8 const number = static_cast<u8>(vector);
    m_exception = PendingException { number, has_error_code(number), error_code };
    m_state.rip = m_instruction_rip;
    return false;
}

bool Cpu::page_fault(u64 linear, u32 error_code)
{
    m_state.cr2 = linear;
    return fault(Vector::PF, error_code);
}

void Cpu::deliver_pending_exception()
{
    if (!m_exception)
        return;
    PendingException const first = *m_exception;
    m_exception.reset();
    ++m_retired; // a delivery counts against run()'s budget, so a fault loop still returns
    if (deliver(first.vector, first.has_error, first.error_code, m_state.rip, false))
        return;
    m_exception.reset();
    // A fault while delivering: a double fault, and a fault while delivering that shuts down.
    if (first.vector == static_cast<u8>(Vector::DF) || !deliver(static_cast<u8>(Vector::DF), true, 0, m_state.rip, false)) {
        m_exception.reset();
        m_shutdown = true;
    }
}

bool Cpu::read_descriptor(u16 selector, u64& low, u64& high)
{
    DescriptorTable table = m_state.gdt;
    if (selector & 4)
        table = { m_state.ldt.base, static_cast<u16>(m_state.ldt.limit) };
    u64 const offset = selector & ~u64 { 7 };
    if (offset + 7 > table.limit)
        return fault(Vector::GP, selector & ~u32 { 3 });
    high = 0;
    if (!read_linear(table.base + offset, 8, low, true))
        return false;
    // System descriptors are 16 bytes in long mode.
    if (m_state.long_mode() && !((low >> 44) & 1) && offset + 15 <= table.limit && !read_linear(table.base + offset + 8, 8, high, true))
        return false;
    return true;
}

bool Cpu::load_segment(SegmentIndex index, u16 selector)
{
    Segment& segment = m_state.segments[static_cast<u8>(index)];
    if (!m_state.protected_mode() || (m_state.rflags & rflags::VM)) {
        real_mode_segment(segment, selector);
        return true;
    }
    bool const stack = index == SegmentIndex::SS;
    u8 const cpl = m_state.cpl();
    if ((selector & ~3) == 0) {
        if (stack && !(m_state.long_mode() && m_state.segments[1].l && cpl < 3))
            return fault(Vector::GP, 0);
        segment = {};
        segment.selector = selector;
        segment.unusable = true;
        segment.dpl = stack ? cpl : 0;
        return true;
    }
    u64 low, high;
    if (!read_descriptor(selector, low, high))
        return false;
    Segment loaded = segment_from_descriptor(low, selector);
    bool const code = loaded.type & 8;
    bool const writable = !code && (loaded.type & 2);
    bool const readable = !code || (loaded.type & 2);
    if (!loaded.s || (stack && (!writable || loaded.dpl != cpl || (selector & 3) != cpl)) || (!stack && !readable))
        return fault(Vector::GP, selector & ~u32 { 3 });
    if (!loaded.present)
        return fault(stack ? Vector::SS : Vector::NP, selector & ~u32 { 3 });
    segment = loaded;
    return true;
}

bool Cpu::load_code_segment(u16 selector, u8 cpl)
{
    if (!m_state.protected_mode()) {
        real_mode_segment(m_state.segments[1], selector);
        return true;
    }
    if ((selector & ~3) == 0)
        return fault(Vector::GP, 0);
    u64 low, high;
    if (!read_descriptor(selector, low, high))
        return false;
    Segment loaded = segment_from_descriptor(low, static_cast<u16>((selector & ~3) | cpl));
    if (!loaded.s || !(loaded.type & 8))
        return fault(Vector::GP, selector & ~u32 { 3 });
    if (!loaded.present)
        return fault(Vector::NP, selector & ~u32 { 3 });
    loaded.dpl = cpl;
    m_state.segments[1] = loaded;
    m_leave_block = true;
    return true;
}

bool Cpu::deliver(u8 vector, bool has_error, u32 error_code, u64 return_rip, bool software)
{
    m_instruction_rip = m_state.rip;
    u64 const old_flags = m_state.full_rflags();
    u16 const old_cs = m_state.segments[1].selector;
    m_leave_block = true;
    m_state.halted = false;

    if (!m_state.protected_mode()) {
        // Real mode: the interrupt vector table (Intel SDM vol. 3A, 20.1.4).
        u64 entry;
        if (static_cast<u64>(vector) * 4 + 3 > m_state.idt.limit)
            return fault(Vector::GP, 0);
        if (!read_linear(m_state.idt.base + vector * 4, 4, entry, true))
            return false;
        u64 const rsp = m_state.gpr[4];
        if (!push(old_flags, 2) || !push(old_cs, 2) || !push(return_rip, 2)) {
            m_state.gpr[4] = rsp;
            return false;
        }
        real_mode_segment(m_state.segments[1], static_cast<u16>(entry >> 16));
        m_state.rip = entry & 0xFFFF;
        m_state.rflags &= ~(rflags::IF | rflags::TF | rflags::AC);
        return true;
    }

    bool const long_mode = m_state.long_mode();
    u32 const gate_size = long_mode ? 16 : 8;
    u32 const idt_error = vector * 8 + 2 + (software ? 0 : 1);
    if (static_cast<u64>(vector) * gate_size + gate_size - 1 > m_state.idt.limit)
        return fault(Vector::GP, idt_error);
    u64 low, high = 0;
    if (!read_linear(m_state.idt.base + vector * gate_size, 8, low, true))
        return false;
    if (long_mode && !read_linear(m_state.idt.base + vector * gate_size + 8, 8, high, true))
        return false;
    u8 const type = (low >> 40) & 0xF;
    u8 const gate_dpl = (low >> 45) & 3;
    bool const present = (low >> 47) & 1;
    u8 const cpl = m_state.cpl();
    bool const interrupt_gate = type == 0xE || type == 0x6;
    bool const gate_32 = type == 0xE || type == 0xF;
    if (long_mode ? (type != 0xE && type != 0xF) : (type != 0xE && type != 0xF && type != 0x6 && type != 0x7))
        return fault(Vector::GP, idt_error); // FIXME: task gates
    if (software && gate_dpl < cpl)
        return fault(Vector::GP, vector * 8 + 2);
    if (!present)
        return fault(Vector::NP, idt_error);
    u16 const selector = static_cast<u16>(low >> 16);
    u64 offset = (low & 0xFFFF) | ((low >> 32) & 0xFFFF'0000);
    if (long_mode)
        offset |= high << 32;
    u8 const ist = long_mode ? (low >> 32) & 7 : 0;

    u64 code_low, code_high;
    if ((selector & ~3) == 0)
        return fault(Vector::GP, idt_error);
    if (!read_descriptor(selector, code_low, code_high))
        return false;
    Segment code = segment_from_descriptor(code_low, selector);
    if (!code.s || !(code.type & 8))
        return fault(Vector::GP, selector & ~u32 { 3 });
    if (!code.present)
        return fault(Vector::NP, selector & ~u32 { 3 });
    u8 const new_cpl = (code.type & 4) ? cpl : code.dpl; // conforming code keeps the CPL
    if (new_cpl > cpl)
        return fault(Vector::GP, selector & ~u32 { 3 });

    // The stack the frame goes on.
    u64 rsp = m_state.gpr[4];
    Segment stack = m_state.segments[2];
    bool const switch_stack = new_cpl < cpl || ist != 0;
    u64 const tss = m_state.tr.base;
    if (long_mode) {
        if (switch_stack) {
            u64 const slot = ist ? 0x24 + (ist - 1) * 8 : 4 + new_cpl * 8;
            if (!read_linear(tss + slot, 8, rsp, true))
                return false;
        }
        if (new_cpl != cpl) {
            stack = {};
            stack.selector = new_cpl;
            stack.unusable = true;
            stack.dpl = new_cpl;
        }
        rsp &= ~u64 { 0xF };
    } else if (new_cpl < cpl) {
        u64 esp, ss;
        if (!read_linear(tss + 4 + new_cpl * 8, 4, esp, true) || !read_linear(tss + 8 + new_cpl * 8, 2, ss, true))
            return false;
        u64 ss_low, ss_high;
        if (!read_descriptor(static_cast<u16>(ss), ss_low, ss_high))
            return false;
        stack = segment_from_descriptor(ss_low, static_cast<u16>(ss));
        rsp = esp;
    }

    u8 const slot_size = long_mode ? 8 : (gate_32 ? 4 : 2);
    u64 frame[6];
    int count = 0;
    if (long_mode || new_cpl < cpl) {
        frame[count++] = m_state.segments[2].selector;
        frame[count++] = m_state.gpr[4];
    }
    frame[count++] = old_flags;
    frame[count++] = old_cs;
    frame[count++] = return_rip;
    if (has_error)
        frame[count++] = error_code;
    u64 const stack_mask = long_mode ? ~u64 { 0 } : (stack.db ? 0xFFFF'FFFF : 0xFFFF);
    u64 const stack_base = long_mode ? 0 : stack.base;
    for (int i = 0; i < count; ++i) {
        rsp = (rsp - slot_size) & stack_mask;
        if (!write_linear((stack_base + rsp) & (long_mode ? ~u64 { 0 } : 0xFFFF'FFFF), slot_size, frame[i], true))
            return false;
    }

    // Commit.
    m_state.segments[2] = stack;
    if (long_mode || !stack.db)
        m_state.gpr[4] = rsp;
    else
        m_state.gpr[4] = rsp & 0xFFFF'FFFF;
    code.selector = static_cast<u16>((selector & ~3) | new_cpl);
    code.dpl = new_cpl;
    m_state.segments[1] = code;
    m_state.rip = offset;
    m_state.rflags &= ~(rflags::TF | rflags::NT | rflags::RF | rflags::VM);
    if (interrupt_gate)
        m_state.rflags &= ~rflags::IF;
    return true;
}

bool Cpu::interrupt_return(u8 size)
{
    m_leave_block = true;
    u8 const cpl = m_state.cpl();
    if (!m_state.protected_mode()) {
        u64 const saved = m_state.gpr[4];
        u64 ip, cs, flags;
        if (!pop(size, ip) || !pop(size, cs) || !pop(size, flags)) {
            m_state.gpr[4] = saved;
            return false;
        }
        real_mode_segment(m_state.segments[1], static_cast<u16>(cs));
        m_state.rip = ip & size_mask(size);
        u64 const changeable = (size == 2 ? 0xFFFF : rflags::WRITABLE) & ~rflags::VM;
        m_state.set_full_rflags((m_state.full_rflags() & ~changeable) | (flags & changeable));
        return true;
    }
    u64 const saved = m_state.gpr[4];
    u64 rip, cs, flags, rsp = 0, ss = 0;
    if (!pop(size, rip) || !pop(size, cs) || !pop(size, flags)) {
        m_state.gpr[4] = saved;
        return false;
    }
    u8 const new_cpl = cs & 3;
    bool const outer = m_state.long_mode() || new_cpl > cpl;
    if (outer && (!pop(size, rsp) || !pop(size, ss))) {
        m_state.gpr[4] = saved;
        return false;
    }
    if (new_cpl < cpl) {
        m_state.gpr[4] = saved;
        return fault(Vector::GP, static_cast<u32>(cs & ~3));
    }
    Segment const old_cs = m_state.segments[1];
    if (!load_code_segment(static_cast<u16>(cs), new_cpl)) {
        m_state.gpr[4] = saved;
        return false;
    }
    if (outer) {
        Segment const old_ss = m_state.segments[2];
        if (!load_segment(SegmentIndex::SS, static_cast<u16>(ss))) {
            m_state.segments[1] = old_cs;
            m_state.segments[2] = old_ss;
            m_state.gpr[4] = saved;
            return false;
        }
        m_state.gpr[4] = rsp;
    }
    m_state.rip = rip & size_mask(size);
    u64 changeable = rflags::STATUS | rflags::TF | rflags::DF | rflags::NT | rflags::RF | rflags::AC | rflags::ID | rflags::VIF | rflags::VIP;
    if (cpl == 0)
        changeable |= rflags::IOPL;
    if (cpl <= ((m_state.rflags >> 12) & 3))
        changeable |= rflags::IF;
    if (size == 2)
        changeable &= 0xFFFF;
    m_state.set_full_rflags((m_state.full_rflags() & ~changeable) | (flags & changeable));
    if (new_cpl > cpl) {
        // Data segments the outer level may not use become null (Intel SDM vol. 2, IRET).
        for (u8 index : { 0, 3, 4, 5 }) {
            Segment& segment = m_state.segments[index];
            bool const conforming_code = (segment.type & 0xC) == 0xC;
            if (!segment.unusable && !conforming_code && segment.dpl < new_cpl) {
                segment = {};
                segment.unusable = true;
            }
        }
    }
    return true;
}

bool Cpu::far_transfer(u16 selector, u64 offset, bool call, u8 size, u64 return_rip)
{
    u64 const saved = m_state.gpr[4];
    u16 const old_cs = m_state.segments[1].selector;
    if (call && (!push(old_cs, size) || !push(return_rip, size))) {
        m_state.gpr[4] = saved;
        return false;
    }
    if (!load_code_segment(selector, m_state.cpl())) {
        m_state.gpr[4] = saved;
        return false;
    }
    m_state.rip = offset & size_mask(size);
    return true;
}

bool Cpu::far_return(u8 size, u16 pop_bytes)
{
    u64 const saved = m_state.gpr[4];
    u64 rip, cs;
    if (!pop(size, rip) || !pop(size, cs)) {
        m_state.gpr[4] = saved;
        return false;
    }
    u8 const cpl = m_state.cpl();
    u8 const new_cpl = m_state.protected_mode() ? (cs & 3) : 0;
    if (new_cpl < cpl) {
        m_state.gpr[4] = saved;
        return fault(Vector::GP, static_cast<u32>(cs & ~3));
    }
    write_gpr(4, stack_size(), m_state.gpr[4] + pop_bytes);
    u64 rsp = 0, ss = 0;
    if (new_cpl > cpl && (!pop(size, rsp) || !pop(size, ss))) {
        m_state.gpr[4] = saved;
        return false;
    }
    if (!load_code_segment(static_cast<u16>(cs), new_cpl)) {
        m_state.gpr[4] = saved;
        return false;
    }
    if (new_cpl > cpl) {
        if (!load_segment(SegmentIndex::SS, static_cast<u16>(ss)))
            return false;
        m_state.gpr[4] = rsp + pop_bytes;
    }
    m_state.rip = rip & size_mask(size);
    return true;
}

} // namespace kasou::emu::cpu
