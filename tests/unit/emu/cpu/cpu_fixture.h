#pragma once

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu::test {

// A small long-mode machine for the CPU's unit tests: 4 MiB of RAM at 0, the first 2 MiB identity
// mapped in 4 KiB pages (user-accessible, writable), a GDT with kernel and user code and data and
// a TSS, and an IDT whose vector v enters a stub at HANDLERS + v * 16 that halts, so a test sees
// which vector arrived from where the CPU stopped. Code goes at CODE, the stack tops at STACK.
class CpuFixture : public ::testing::Test, public CpuPlatform {
public:
    static constexpr u64 RAM = 4 << 20;
    static constexpr u64 CODE = 0x1000;
    static constexpr u64 STACK = 0x8000;
    static constexpr u64 KERNEL_STACK = 0x9000;
    static constexpr u64 PML4 = 0x10000, PDPT = 0x11000, PD = 0x12000, PT = 0x13000;
    static constexpr u64 GDT = 0x20000, IDT = 0x21000, TSS = 0x22000;
    static constexpr u64 HANDLERS = 0x30000;
    static constexpr u64 DATA = 0x40000;
    static constexpr u16 KERNEL_CS = 0x08, KERNEL_DS = 0x10, USER_DS = 0x1B, USER_CS = 0x23, TSS_SELECTOR = 0x28;

    CpuFixture()
        : m_ram(RAM, 0)
    {
        m_memory.add(0, RAM, m_ram.data());
        m_cpu = std::make_unique<Cpu>(m_memory, *this);
        build_tables();
        enter_long_mode();
    }

    u64 tsc() override { return m_tsc += 1000; }
    bool read_msr(u32, u64&) override { return false; }
    bool write_msr(u32, u64) override { return false; }

    template<class T>
    void poke(u64 address, T value) { std::memcpy(m_ram.data() + address, &value, sizeof(T)); }
    template<class T>
    T peek(u64 address) const
    {
        T value;
        std::memcpy(&value, m_ram.data() + address, sizeof(T));
        return value;
    }
    void load(std::vector<u8> const& code, u64 at = CODE)
    {
        std::memcpy(m_ram.data() + at, code.data(), code.size());
        m_cpu->state_changed();
    }

    CpuState& state() { return m_cpu->state(); }
    u64& reg(u8 number) { return state().gpr[number]; }

    // Runs until the CPU stops for something (HLT included).
    CpuExit run(u64 budget = 100'000) { return m_cpu->run(budget); }
    // The vector whose stub the CPU halted in, or -1.
    int halted_vector()
    {
        u64 rip = state().rip - 1;
        if (!state().halted || rip < HANDLERS || rip >= HANDLERS + 256 * 16)
            return -1;
        return static_cast<int>((rip - HANDLERS) / 16);
    }
    // Clears a 4 KiB page's mapping (present bit and all).
    void unmap(u64 page) { poke<u64>(PT + (page >> 12) * 8, 0); }
    u64 pte(u64 page) { return peek<u64>(PT + (page >> 12) * 8); }
    void set_pte(u64 page, u64 value) { poke<u64>(PT + (page >> 12) * 8, value); }
    void to_user_mode();

    std::unique_ptr<Cpu> m_cpu;

private:
    void build_tables();
    void enter_long_mode();

    std::vector<u8> m_ram;
    PhysicalMemory m_memory;
    u64 m_tsc { 0 };
};

inline void CpuFixture::build_tables()
{
    poke<u64>(PML4, PDPT | 7);
    poke<u64>(PDPT, PD | 7);
    poke<u64>(PD, PT | 7);
    for (u64 page = 0; page < 512; ++page)
        poke<u64>(PT + page * 8, (page << 12) | 7);
    // Second 2 MiB: one large page, supervisor only.
    poke<u64>(PD + 8, (u64 { 2 } << 20) | 0x83);

    poke<u64>(GDT + 0x08, 0x00af9a000000ffff);
    poke<u64>(GDT + 0x10, 0x00cf92000000ffff);
    poke<u64>(GDT + 0x18, 0x00cff2000000ffff);
    poke<u64>(GDT + 0x20, 0x00affa000000ffff);
    u64 const tss_low = 0x67 | ((TSS & 0xFFFFFF) << 16) | (u64 { 0x89 } << 40) | (((TSS >> 24) & 0xFF) << 56);
    poke<u64>(GDT + 0x28, tss_low);
    poke<u64>(GDT + 0x30, 0);
    poke<u64>(TSS + 4, KERNEL_STACK);

    for (u64 vector = 0; vector < 256; ++vector) {
        u64 handler = HANDLERS + vector * 16;
        poke<u8>(handler, 0xF4); // hlt
        u64 low = (handler & 0xFFFF) | (u64 { KERNEL_CS } << 16) | (u64 { 0x8E } << 40) | (((handler >> 16) & 0xFFFF) << 48);
        if (vector == 0x80)
            low |= u64 { 3 } << 45; // reachable with INT from CPL3
        poke<u64>(IDT + vector * 16, low);
        poke<u64>(IDT + vector * 16 + 8, handler >> 32);
    }
}

inline void CpuFixture::enter_long_mode()
{
    auto& s = state();
    auto segment = [](u16 selector, u8 type, u8 dpl, bool code) {
        Segment segment {};
        segment.selector = selector;
        segment.type = type;
        segment.s = 1;
        segment.present = 1;
        segment.dpl = dpl;
        segment.g = 1;
        segment.limit = 0xFFFF'FFFF;
        segment.l = code;
        segment.db = !code;
        return segment;
    };
    s.segments[1] = segment(KERNEL_CS, 0xB, 0, true);
    for (u8 index : { 0, 2, 3, 4, 5 })
        s.segments[index] = segment(KERNEL_DS, 0x3, 0, false);
    s.gdt = { GDT, 0x37 };
    s.idt = { IDT, 256 * 16 - 1 };
    s.tr = {};
    s.tr.selector = TSS_SELECTOR;
    s.tr.base = TSS;
    s.tr.limit = 0x67;
    s.tr.type = 0xB;
    s.tr.present = 1;
    s.cr0 = cr0::PE | cr0::ET | cr0::PG | cr0::WP;
    s.cr3 = PML4;
    s.cr4 = cr4::PAE;
    s.efer = efer::LME | efer::LMA | efer::NXE | efer::SCE;
    s.rip = CODE;
    s.gpr[4] = STACK;
    s.set_full_rflags(rflags::RESERVED1);
    m_cpu->state_changed();
}

inline void CpuFixture::to_user_mode()
{
    auto& s = state();
    s.segments[1].selector = USER_CS;
    s.segments[1].dpl = 3;
    s.segments[2].selector = USER_DS;
    s.segments[2].dpl = 3;
    m_cpu->state_changed();
}

} // namespace kasou::emu::cpu::test
