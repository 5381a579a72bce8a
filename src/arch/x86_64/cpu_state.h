#pragma once

#include <array>
#include <vector>

#include "base/types.h"

// The architectural state of one x86-64 vCPU in terms of the architecture (Intel SDM vol. 3A), not
// of any execution engine: KVM converts to and from its structs, a software CPU keeps these
// directly. Plain values, so a state can be copied, compared and stored.
namespace kasou::arch::x86_64 {

// One CPUID leaf (or sub-leaf when significant_index is set: the entry only answers for `index`).
struct CpuidEntry {
    u32 function { 0 };
    u32 index { 0 };
    bool significant_index { false };
    u32 eax { 0 };
    u32 ebx { 0 };
    u32 ecx { 0 };
    u32 edx { 0 };
    bool operator==(CpuidEntry const&) const = default;
};
using CpuidTable = std::vector<CpuidEntry>;

struct GeneralRegisters {
    u64 rax { 0 }, rbx { 0 }, rcx { 0 }, rdx { 0 }, rsi { 0 }, rdi { 0 }, rsp { 0 }, rbp { 0 };
    u64 r8 { 0 }, r9 { 0 }, r10 { 0 }, r11 { 0 }, r12 { 0 }, r13 { 0 }, r14 { 0 }, r15 { 0 };
    u64 rip { 0 }, rflags { 0 };
    bool operator==(GeneralRegisters const&) const = default;
};

// A segment register with its hidden descriptor cache (Intel SDM vol. 3A, 3.4.5); the limit is in
// bytes (granularity already applied). `unusable` is VMX's "segment unusable" bit.
struct Segment {
    u64 base { 0 };
    u32 limit { 0 };
    u16 selector { 0 };
    u8 type { 0 };
    u8 present { 0 }, dpl { 0 }, db { 0 }, s { 0 }, l { 0 }, g { 0 }, avl { 0 };
    bool unusable { false };
    bool operator==(Segment const&) const = default;
};

// The hidden part a segment register loads from an 8-byte code or data descriptor (Intel SDM
// vol. 3A, 3.4.5): base, limit with granularity applied, type and flags.
inline Segment segment_from_descriptor(u64 descriptor, u16 selector)
{
    Segment segment {};
    segment.base = ((descriptor >> 16) & 0xFF'FFFF) | (((descriptor >> 56) & 0xFF) << 24);
    u32 limit = static_cast<u32>((descriptor & 0xFFFF) | (((descriptor >> 48) & 0xF) << 16));
    segment.g = (descriptor >> 55) & 1;
    segment.limit = segment.g ? (limit << 12) | 0xFFF : limit;
    segment.selector = selector;
    segment.type = (descriptor >> 40) & 0xF;
    segment.s = (descriptor >> 44) & 1;
    segment.dpl = (descriptor >> 45) & 3;
    segment.present = (descriptor >> 47) & 1;
    segment.avl = (descriptor >> 52) & 1;
    segment.l = (descriptor >> 53) & 1;
    segment.db = (descriptor >> 54) & 1;
    return segment;
}

struct DescriptorTable {
    u64 base { 0 };
    u16 limit { 0 };
    bool operator==(DescriptorTable const&) const = default;
};

// Segments, descriptor tables and control registers. pending_interrupts is a bitmap of the 256
// external interrupt vectors waiting for injection (at most one bit set).
struct SystemRegisters {
    Segment cs, ds, es, fs, gs, ss, tr, ldt;
    DescriptorTable gdt, idt;
    u64 cr0 { 0 }, cr2 { 0 }, cr3 { 0 }, cr4 { 0 }, cr8 { 0 };
    u64 efer { 0 };
    u64 apic_base { 0 };
    std::array<u64, 4> pending_interrupts {};
    bool operator==(SystemRegisters const&) const = default;
};

// The x87 and SSE state in FXSAVE terms (Intel SDM vol. 1, 10.5.1): eight 80-bit registers in
// 16-byte slots, the abridged tag word, sixteen XMM registers.
struct FpuState {
    std::array<std::array<u8, 16>, 8> fpr {};
    u16 fcw { 0 }, fsw { 0 };
    u8 ftwx { 0 };
    u16 last_opcode { 0 };
    u64 last_ip { 0 }, last_dp { 0 };
    std::array<std::array<u8, 16>, 16> xmm {};
    u32 mxcsr { 0 };
    bool operator==(FpuState const&) const = default;
};

// The legacy 4 KiB XSAVE area (Intel SDM vol. 1, 13.4), standard format.
using XsaveArea = std::array<u32, 1024>;

// An extended control register (XCR0 is the only one defined today).
struct Xcr {
    u32 index { 0 };
    u64 value { 0 };
    bool operator==(Xcr const&) const = default;
};

struct Msr {
    u32 index { 0 };
    u64 value { 0 };
    bool operator==(Msr const&) const = default;
};

// DR0-DR3, DR6, DR7.
struct DebugRegisters {
    std::array<u64, 4> address {};
    u64 dr6 { 0 }, dr7 { 0 };
    bool operator==(DebugRegisters const&) const = default;
};

// The local APIC's 1 KiB register page (Intel SDM vol. 3A, 11.4.1), as xAPIC MMIO lays it out.
using LapicRegisters = std::array<u8, 1024>;

// Events in flight between instructions: an exception, external or software interrupt, NMI or SMI
// that was taken but not yet delivered, the interrupt shadow after STI / MOV SS, a SIPI vector.
struct PendingEvents {
    struct Exception {
        bool injected { false }, pending { false };
        u8 vector { 0 };
        bool has_error_code { false };
        u32 error_code { 0 };
        bool has_payload { false }; // CR2 for #PF, DR6 for #DB
        u64 payload { 0 };
        bool operator==(Exception const&) const = default;
    } exception;
    struct Interrupt {
        bool injected { false };
        u8 vector { 0 };
        bool soft { false };
        u8 shadow { 0 }; // 1: blocked by STI, 2: blocked by MOV SS
        bool operator==(Interrupt const&) const = default;
    } interrupt;
    struct Nmi {
        bool injected { false }, pending { false }, masked { false };
        bool operator==(Nmi const&) const = default;
    } nmi;
    u32 sipi_vector { 0 };
    struct Smi {
        bool smm { false }, pending { false }, inside_nmi { false }, latched_init { false };
        bool operator==(Smi const&) const = default;
    } smi;
    bool triple_fault_pending { false };
    bool operator==(PendingEvents const&) const = default;
};

// The multiprocessing state (Intel SDM vol. 3A, 9.4): what the vCPU does when next scheduled.
enum class MpState : u8 {
    Runnable,      // executing instructions
    Uninitialized, // an AP that has not received INIT
    InitReceived,  // an AP waiting for SIPI
    Halted,        // HLT, waiting for an interrupt
    SipiReceived,  // about to start at the SIPI vector
};

// Everything a snapshot of one vCPU needs, read and written whole by an engine's vCPU.
struct VcpuState {
    CpuidTable cpuid;
    GeneralRegisters registers;
    SystemRegisters system;
    FpuState fpu;
    XsaveArea xsave {};
    std::vector<Xcr> xcrs;
    std::vector<Msr> msrs;
    DebugRegisters debug;
    LapicRegisters lapic {};
    PendingEvents events;
    MpState mp_state { MpState::Runnable };
    bool operator==(VcpuState const&) const = default;
};

} // namespace kasou::arch::x86_64
