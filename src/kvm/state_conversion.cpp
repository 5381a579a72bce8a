#include "kvm/state_conversion.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace kasou::kvm {

using namespace arch::x86_64;

CpuidEntry to_neutral(kvm_cpuid_entry2 const& entry)
{
    return { entry.function, entry.index, (entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0, entry.eax, entry.ebx, entry.ecx,
        entry.edx };
}

kvm_cpuid_entry2 to_kvm(CpuidEntry const& entry)
{
    kvm_cpuid_entry2 out {};
    out.function = entry.function;
    out.index = entry.index;
    out.flags = entry.significant_index ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    out.eax = entry.eax;
    out.ebx = entry.ebx;
    out.ecx = entry.ecx;
    out.edx = entry.edx;
    return out;
}

CpuidTable to_neutral(std::vector<kvm_cpuid_entry2> const& table)
{
    CpuidTable out;
    out.reserve(table.size());
    for (auto const& entry : table)
        out.push_back(to_neutral(entry));
    return out;
}

std::vector<kvm_cpuid_entry2> to_kvm(CpuidTable const& table)
{
    std::vector<kvm_cpuid_entry2> out;
    out.reserve(table.size());
    for (auto const& entry : table)
        out.push_back(to_kvm(entry));
    return out;
}

GeneralRegisters to_neutral(kvm_regs const& r)
{
    return { r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip,
        r.rflags };
}

kvm_regs to_kvm(GeneralRegisters const& r)
{
    return { r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip,
        r.rflags };
}

Segment to_neutral(kvm_segment const& s)
{
    return { s.base, s.limit, s.selector, s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable != 0 };
}

kvm_segment to_kvm(Segment const& s)
{
    kvm_segment out {};
    out.base = s.base;
    out.limit = s.limit;
    out.selector = s.selector;
    out.type = s.type;
    out.present = s.present;
    out.dpl = s.dpl;
    out.db = s.db;
    out.s = s.s;
    out.l = s.l;
    out.g = s.g;
    out.avl = s.avl;
    out.unusable = s.unusable ? 1 : 0;
    return out;
}

namespace {

// The fields kvm_sregs and SystemRegisters share, pair by pair.
constexpr std::pair<kvm_segment kvm_sregs::*, Segment SystemRegisters::*> SEGMENTS[] = {
    { &kvm_sregs::cs, &SystemRegisters::cs },
    { &kvm_sregs::ds, &SystemRegisters::ds },
    { &kvm_sregs::es, &SystemRegisters::es },
    { &kvm_sregs::fs, &SystemRegisters::fs },
    { &kvm_sregs::gs, &SystemRegisters::gs },
    { &kvm_sregs::ss, &SystemRegisters::ss },
    { &kvm_sregs::tr, &SystemRegisters::tr },
    { &kvm_sregs::ldt, &SystemRegisters::ldt },
};
constexpr std::pair<__u64 kvm_sregs::*, u64 SystemRegisters::*> CONTROL_REGISTERS[] = {
    { &kvm_sregs::cr0, &SystemRegisters::cr0 },
    { &kvm_sregs::cr2, &SystemRegisters::cr2 },
    { &kvm_sregs::cr3, &SystemRegisters::cr3 },
    { &kvm_sregs::cr4, &SystemRegisters::cr4 },
    { &kvm_sregs::cr8, &SystemRegisters::cr8 },
    { &kvm_sregs::efer, &SystemRegisters::efer },
    { &kvm_sregs::apic_base, &SystemRegisters::apic_base },
};

} // namespace

SystemRegisters to_neutral(kvm_sregs const& s)
{
    SystemRegisters out;
    for (auto [kvm, neutral] : SEGMENTS)
        out.*neutral = to_neutral(s.*kvm);
    for (auto [kvm, neutral] : CONTROL_REGISTERS)
        out.*neutral = s.*kvm;
    out.gdt = { s.gdt.base, s.gdt.limit };
    out.idt = { s.idt.base, s.idt.limit };
    static_assert(sizeof(s.interrupt_bitmap) == sizeof(out.pending_interrupts));
    std::memcpy(out.pending_interrupts.data(), s.interrupt_bitmap, sizeof(s.interrupt_bitmap));
    return out;
}

kvm_sregs to_kvm(SystemRegisters const& s)
{
    kvm_sregs out {};
    for (auto [kvm, neutral] : SEGMENTS)
        out.*kvm = to_kvm(s.*neutral);
    for (auto [kvm, neutral] : CONTROL_REGISTERS)
        out.*kvm = s.*neutral;
    out.gdt.base = s.gdt.base;
    out.gdt.limit = s.gdt.limit;
    out.idt.base = s.idt.base;
    out.idt.limit = s.idt.limit;
    std::memcpy(out.interrupt_bitmap, s.pending_interrupts.data(), sizeof(out.interrupt_bitmap));
    return out;
}

FpuState to_neutral(kvm_fpu const& f)
{
    FpuState out;
    static_assert(sizeof(f.fpr) == sizeof(out.fpr) && sizeof(f.xmm) == sizeof(out.xmm));
    std::memcpy(out.fpr.data(), f.fpr, sizeof(f.fpr));
    out.fcw = f.fcw;
    out.fsw = f.fsw;
    out.ftwx = f.ftwx;
    out.last_opcode = f.last_opcode;
    out.last_ip = f.last_ip;
    out.last_dp = f.last_dp;
    std::memcpy(out.xmm.data(), f.xmm, sizeof(f.xmm));
    out.mxcsr = f.mxcsr;
    return out;
}

kvm_fpu to_kvm(FpuState const& f)
{
    kvm_fpu out {};
    std::memcpy(out.fpr, f.fpr.data(), sizeof(out.fpr));
    out.fcw = f.fcw;
    out.fsw = f.fsw;
    out.ftwx = f.ftwx;
    out.last_opcode = f.last_opcode;
    out.last_ip = f.last_ip;
    out.last_dp = f.last_dp;
    std::memcpy(out.xmm, f.xmm.data(), sizeof(out.xmm));
    out.mxcsr = f.mxcsr;
    return out;
}

std::vector<Xcr> to_neutral(kvm_xcrs const& x)
{
    std::vector<Xcr> out;
    for (u32 i = 0; i < std::min<u32>(x.nr_xcrs, KVM_MAX_XCRS); ++i)
        out.push_back({ x.xcrs[i].xcr, x.xcrs[i].value });
    return out;
}

ErrorOr<kvm_xcrs> to_kvm(std::vector<Xcr> const& xcrs)
{
    if (xcrs.size() > KVM_MAX_XCRS)
        return make_error(fmt::format("{} XCRs given, KVM takes at most {}", xcrs.size(), KVM_MAX_XCRS));
    kvm_xcrs out {};
    out.nr_xcrs = static_cast<u32>(xcrs.size());
    for (size_t i = 0; i < xcrs.size(); ++i) {
        out.xcrs[i].xcr = xcrs[i].index;
        out.xcrs[i].value = xcrs[i].value;
    }
    return out;
}

DebugRegisters to_neutral(kvm_debugregs const& d)
{
    return { { d.db[0], d.db[1], d.db[2], d.db[3] }, d.dr6, d.dr7 };
}

kvm_debugregs to_kvm(DebugRegisters const& d)
{
    kvm_debugregs out {};
    std::copy(d.address.begin(), d.address.end(), out.db);
    out.dr6 = d.dr6;
    out.dr7 = d.dr7;
    return out;
}

LapicRegisters to_neutral(kvm_lapic_state const& l)
{
    LapicRegisters out;
    static_assert(sizeof(l.regs) == sizeof(out));
    std::memcpy(out.data(), l.regs, sizeof(l.regs));
    return out;
}

kvm_lapic_state to_kvm(LapicRegisters const& l)
{
    kvm_lapic_state out {};
    std::memcpy(out.regs, l.data(), sizeof(out.regs));
    return out;
}

PendingEvents to_neutral(kvm_vcpu_events const& e)
{
    PendingEvents out;
    bool has_payload = (e.flags & KVM_VCPUEVENT_VALID_PAYLOAD) && e.exception_has_payload;
    out.exception = { e.exception.injected != 0, e.exception.pending != 0, e.exception.nr, e.exception.has_error_code != 0,
        e.exception.error_code, has_payload, has_payload ? e.exception_payload : 0 };
    out.interrupt = { e.interrupt.injected != 0, e.interrupt.nr, e.interrupt.soft != 0, e.interrupt.shadow };
    out.nmi = { e.nmi.injected != 0, e.nmi.pending != 0, e.nmi.masked != 0 };
    out.sipi_vector = e.sipi_vector;
    out.smi = { e.smi.smm != 0, e.smi.pending != 0, e.smi.smm_inside_nmi != 0, e.smi.latched_init != 0 };
    out.triple_fault_pending = (e.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT) && e.triple_fault.pending;
    return out;
}

kvm_vcpu_events to_kvm(PendingEvents const& e)
{
    kvm_vcpu_events out {};
    out.exception.injected = e.exception.injected;
    out.exception.pending = e.exception.pending;
    out.exception.nr = e.exception.vector;
    out.exception.has_error_code = e.exception.has_error_code;
    out.exception.error_code = e.exception.error_code;
    out.interrupt.injected = e.interrupt.injected;
    out.interrupt.nr = e.interrupt.vector;
    out.interrupt.soft = e.interrupt.soft;
    out.interrupt.shadow = e.interrupt.shadow;
    out.nmi.injected = e.nmi.injected;
    out.nmi.pending = e.nmi.pending;
    out.nmi.masked = e.nmi.masked;
    out.sipi_vector = e.sipi_vector;
    out.smi.smm = e.smi.smm;
    out.smi.pending = e.smi.pending;
    out.smi.smm_inside_nmi = e.smi.inside_nmi;
    out.smi.latched_init = e.smi.latched_init;
    out.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
    if (e.sipi_vector != 0)
        out.flags |= KVM_VCPUEVENT_VALID_SIPI_VECTOR;
    if (e.exception.has_payload) {
        out.flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
        out.exception_has_payload = 1;
        out.exception_payload = e.exception.payload;
    }
    if (e.triple_fault_pending) {
        out.flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
        out.triple_fault.pending = 1;
    }
    return out;
}

ErrorOr<MpState> to_neutral(kvm_mp_state const& state)
{
    switch (state.mp_state) {
    case KVM_MP_STATE_RUNNABLE: return MpState::Runnable;
    case KVM_MP_STATE_UNINITIALIZED: return MpState::Uninitialized;
    case KVM_MP_STATE_INIT_RECEIVED: return MpState::InitReceived;
    case KVM_MP_STATE_HALTED: return MpState::Halted;
    case KVM_MP_STATE_SIPI_RECEIVED: return MpState::SipiReceived;
    default: return make_error(ErrorKind::Unsupported, fmt::format("vCPU in KVM multiprocessing state {}, which kasou does not model", state.mp_state));
    }
}

kvm_mp_state to_kvm(MpState state)
{
    switch (state) {
    case MpState::Runnable: return { KVM_MP_STATE_RUNNABLE };
    case MpState::Uninitialized: return { KVM_MP_STATE_UNINITIALIZED };
    case MpState::InitReceived: return { KVM_MP_STATE_INIT_RECEIVED };
    case MpState::Halted: return { KVM_MP_STATE_HALTED };
    case MpState::SipiReceived: return { KVM_MP_STATE_SIPI_RECEIVED };
    }
    return { KVM_MP_STATE_RUNNABLE };
}

engine::PicChipState to_neutral(kvm_pic_state const& chip)
{
    return { chip.last_irr, chip.irr, chip.imr, chip.isr, chip.priority_add, chip.irq_base, chip.read_reg_select, chip.poll, chip.special_mask,
        chip.init_state, chip.auto_eoi, chip.rotate_on_auto_eoi, chip.special_fully_nested_mode, chip.init4, chip.elcr, chip.elcr_mask };
}

kvm_pic_state to_kvm(engine::PicChipState const& chip)
{
    kvm_pic_state out {};
    out.last_irr = chip.last_irr;
    out.irr = chip.irr;
    out.imr = chip.imr;
    out.isr = chip.isr;
    out.priority_add = chip.priority_add;
    out.irq_base = chip.irq_base;
    out.read_reg_select = chip.read_reg_select;
    out.poll = chip.poll;
    out.special_mask = chip.special_mask;
    out.init_state = chip.init_state;
    out.auto_eoi = chip.auto_eoi;
    out.rotate_on_auto_eoi = chip.rotate_on_auto_eoi;
    out.special_fully_nested_mode = chip.special_fully_nested_mode;
    out.init4 = chip.init4;
    out.elcr = chip.elcr;
    out.elcr_mask = chip.elcr_mask;
    return out;
}

engine::IoapicChipState to_neutral(kvm_ioapic_state const& chip)
{
    engine::IoapicChipState out { chip.base_address, chip.ioregsel, chip.id, chip.irr, {} };
    for (size_t pin = 0; pin < out.redirection.size(); ++pin)
        out.redirection[pin] = chip.redirtbl[pin].bits;
    return out;
}

kvm_ioapic_state to_kvm(engine::IoapicChipState const& chip)
{
    kvm_ioapic_state out {};
    out.base_address = chip.base_address;
    out.ioregsel = chip.ioregsel;
    out.id = chip.id;
    out.irr = chip.irr;
    for (size_t pin = 0; pin < chip.redirection.size(); ++pin)
        out.redirtbl[pin].bits = chip.redirection[pin];
    return out;
}

engine::PitCounterState to_neutral(kvm_pit_channel_state const& counter, i64 now_ns)
{
    return { counter.count, counter.latched_count, counter.count_latched, counter.status_latched, counter.status, counter.read_state,
        counter.write_state, counter.write_latch, counter.rw_mode, counter.mode, counter.bcd, counter.gate,
        static_cast<i64>(static_cast<u64>(now_ns) - static_cast<u64>(counter.count_load_time)) };
}

kvm_pit_channel_state to_kvm(engine::PitCounterState const& counter, i64 now_ns)
{
    kvm_pit_channel_state out {};
    out.count = counter.count;
    out.latched_count = counter.latched_count;
    out.count_latched = counter.count_latched;
    out.status_latched = counter.status_latched;
    out.status = counter.status;
    out.read_state = counter.read_state;
    out.write_state = counter.write_state;
    out.write_latch = counter.write_latch;
    out.rw_mode = counter.rw_mode;
    out.mode = counter.mode;
    out.bcd = counter.bcd;
    out.gate = counter.gate;
    out.count_load_time = static_cast<i64>(static_cast<u64>(now_ns) - static_cast<u64>(counter.load_age_ns));
    return out;
}

} // namespace kasou::kvm
