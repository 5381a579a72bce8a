#pragma once

#include <array>

#include "arch/x86_64/cpu_state.h"
#include "base/types.h"
#include "emu/cpu/lazy_flags.h"

namespace kasou::emu::cpu {

// Control register and EFER bits (Intel SDM vol. 3A, 2.5 and 2.2.1).
namespace cr0 {
constexpr u64 PE = 1u << 0;
constexpr u64 MP = 1u << 1;
constexpr u64 EM = 1u << 2;
constexpr u64 TS = 1u << 3;
constexpr u64 ET = 1u << 4;
constexpr u64 NE = 1u << 5;
constexpr u64 WP = 1u << 16;
constexpr u64 AM = 1u << 18;
constexpr u64 NW = 1u << 29;
constexpr u64 CD = 1u << 30;
constexpr u64 PG = 1u << 31;
} // namespace cr0
namespace cr4 {
constexpr u64 PSE = 1u << 4;
constexpr u64 PAE = 1u << 5;
constexpr u64 PGE = 1u << 7;
constexpr u64 OSFXSR = 1u << 9;
constexpr u64 OSXMMEXCPT = 1u << 10;
constexpr u64 FSGSBASE = 1u << 16;
constexpr u64 SMEP = 1u << 20;
constexpr u64 SMAP = 1u << 21;
} // namespace cr4
namespace efer {
constexpr u64 SCE = 1u << 0;
constexpr u64 LME = 1u << 8;
constexpr u64 LMA = 1u << 10;
constexpr u64 NXE = 1u << 11;
} // namespace efer

// Model-specific registers the CPU keeps itself (Intel SDM vol. 4).
namespace msr {
constexpr u32 TSC = 0x10;
constexpr u32 APIC_BASE = 0x1B;
constexpr u32 MTRRCAP = 0xFE;
constexpr u32 SYSENTER_CS = 0x174;
constexpr u32 SYSENTER_ESP = 0x175;
constexpr u32 SYSENTER_EIP = 0x176;
constexpr u32 MISC_ENABLE = 0x1A0;
constexpr u32 PAT = 0x277;
constexpr u32 MTRR_DEF_TYPE = 0x2FF;
constexpr u32 EFER = 0xC000'0080;
constexpr u32 STAR = 0xC000'0081;
constexpr u32 LSTAR = 0xC000'0082;
constexpr u32 CSTAR = 0xC000'0083;
constexpr u32 SFMASK = 0xC000'0084;
constexpr u32 FS_BASE = 0xC000'0100;
constexpr u32 GS_BASE = 0xC000'0101;
constexpr u32 KERNEL_GS_BASE = 0xC000'0102;
constexpr u32 TSC_AUX = 0xC000'0103;
} // namespace msr

using arch::x86_64::DescriptorTable;
using arch::x86_64::Segment;

// The architectural state of the software CPU. Segment hidden parts are the neutral
// arch::x86_64::Segment; the status flags live in `flags` (lazy), the other RFLAGS bits in
// `rflags`. Plain data: the executor is the only writer while it runs.
struct CpuState {
    std::array<u64, 16> gpr {};
    u64 rip { 0 };
    u64 rflags { rflags::RESERVED1 }; // every bit but the status flags
    LazyFlags flags;
    std::array<Segment, 6> segments {}; // ES, CS, SS, DS, FS, GS
    Segment tr {}, ldt {};
    DescriptorTable gdt {}, idt {};
    u64 cr0 { cr0::ET }, cr2 { 0 }, cr3 { 0 }, cr4 { 0 }, cr8 { 0 };
    u64 efer { 0 };
    std::array<u64, 8> dr { 0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400 };
    u64 star { 0 }, lstar { 0 }, cstar { 0 }, sfmask { 0 }, kernel_gs_base { 0 }, tsc_aux { 0 };
    u64 sysenter_cs { 0 }, sysenter_esp { 0 }, sysenter_eip { 0 };
    u64 pat { 0x0007'0406'0007'0406 }, misc_enable { 1 }, mtrr_def_type { 0 };
    u64 apic_base { 0xFEE0'0000 | (1u << 11) | (1u << 8) };
    i64 tsc_offset { 0 };
    u8 interrupt_shadow { 0 }; // 1: after STI or MOV SS, external interrupts wait one instruction
    bool halted { false };

    u64 full_rflags() const { return rflags | flags.status(); }
    void set_full_rflags(u64 value)
    {
        rflags = (value & ~rflags::STATUS) | rflags::RESERVED1;
        flags.set_materialized(rflags::STATUS, value);
    }
    Segment& segment(u8 index) { return segments[index]; }
    bool long_mode() const { return efer & efer::LMA; }
    bool protected_mode() const { return cr0 & cr0::PE; }
    bool paging() const { return cr0 & cr0::PG; }
    // The current privilege level: CS's DPL in protected mode (SS's RPL equals it), 0 in real mode.
    u8 cpl() const { return protected_mode() ? segments[1].dpl : 0; }
};

} // namespace kasou::emu::cpu
