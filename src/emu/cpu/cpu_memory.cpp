// Guest memory as the CPU reaches it: the page walk, the soft TLB, RAM and MMIO accesses.

#include <cstring>

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

namespace {

// Paging-structure entry bits (Intel SDM vol. 3A, 4.5).
constexpr u64 PTE_P = 1u << 0;
constexpr u64 PTE_RW = 1u << 1;
constexpr u64 PTE_US = 1u << 2;
constexpr u64 PTE_A = 1u << 5;
constexpr u64 PTE_D = 1u << 6;
constexpr u64 PTE_PS = 1u << 7;
constexpr u64 PTE_XD = u64 { 1 } << 63;
constexpr u64 ADDRESS_MASK = 0x000F'FFFF'FFFF'F000;

// Page-fault error code bits (Intel SDM vol. 3A, 4.7).
constexpr u32 PF_P = 1u << 0;
constexpr u32 PF_W = 1u << 1;
constexpr u32 PF_U = 1u << 2;
constexpr u32 PF_ID = 1u << 4;

bool canonical(u64 linear)
{
    return static_cast<u64>(static_cast<i64>(linear << 16) >> 16) == linear;
}

} // namespace

bool Cpu::walk(u64 linear, Access access, bool user, bool set_bits, Translation& out, u32& error_code) const
{
    out = {};
    if (!m_state.paging()) {
        out.physical = m_state.long_mode() ? linear : (linear & 0xFFFF'FFFF);
        return true;
    }
    bool const pae = m_state.cr4 & cr4::PAE;
    bool const nx_enabled = (m_state.efer & efer::NXE) && pae;
    u32 const base_code = (access == Access::Write ? PF_W : 0) | (user ? PF_U : 0) | (access == Access::Execute && nx_enabled ? PF_ID : 0);

    int levels;
    u64 table;
    if (m_state.long_mode()) {
        levels = 4;
        table = m_state.cr3 & ADDRESS_MASK;
    } else if (pae) {
        // The four PDPTEs hold no access rights.
        u64 pdpte_address = (m_state.cr3 & 0xFFFF'FFE0) + ((linear >> 30) & 3) * 8;
        u8* pdpte = m_memory.host_pointer(pdpte_address);
        u64 pdpte_value = 0;
        if (pdpte)
            std::memcpy(&pdpte_value, pdpte, 8);
        if (!(pdpte_value & PTE_P)) {
            error_code = base_code;
            return false;
        }
        levels = 2;
        table = pdpte_value & ADDRESS_MASK;
    } else {
        levels = 2;
        table = m_state.cr3 & 0xFFFF'F000;
    }

    bool writable = true, user_page = true, executable = true;
    for (int level = levels; level >= 1; --level) {
        u64 index;
        u64 entry_size = pae || m_state.long_mode() ? 8 : 4;
        if (entry_size == 8)
            index = (linear >> (12 + 9 * (level - 1))) & 0x1FF;
        else
            index = (linear >> (12 + 10 * (level - 1))) & 0x3FF;
        u8* slot = m_memory.host_pointer(table + index * entry_size);
        u64 entry = 0;
        if (slot)
            std::memcpy(&entry, slot, entry_size);
        if (!(entry & PTE_P)) {
            error_code = base_code;
            return false;
        }
        writable = writable && (entry & PTE_RW);
        user_page = user_page && (entry & PTE_US);
        if (nx_enabled && (entry & PTE_XD))
            executable = false;
        bool const large = level > 1 && (entry & PTE_PS) && (entry_size == 8 ? level <= 3 : (m_state.cr4 & cr4::PSE) != 0);
        bool const leaf = level == 1 || large;
        if (set_bits && slot) {
            // Accessed on every level, dirty on the leaf for a write; atomic against other vCPUs.
            u64 bits = PTE_A | (leaf && access == Access::Write ? PTE_D : 0);
            if ((entry & bits) != bits) {
                if (entry_size == 8)
                    __atomic_fetch_or(reinterpret_cast<u64*>(slot), bits, __ATOMIC_SEQ_CST);
                else
                    __atomic_fetch_or(reinterpret_cast<u32*>(slot), static_cast<u32>(bits), __ATOMIC_SEQ_CST);
            }
        }
        if (leaf) {
            u64 page_size;
            u64 frame;
            if (entry_size == 4) {
                page_size = large ? 0x40'0000 : 0x1000;
                frame = large ? ((entry & 0xFFC0'0000) | ((entry & 0x1'E000) << 19)) : (entry & 0xFFFF'F000);
            } else {
                page_size = u64 { 1 } << (12 + 9 * (level - 1));
                frame = entry & ADDRESS_MASK & ~(page_size - 1);
            }
            out.physical = frame | (linear & (page_size - 1));
            break;
        }
        table = entry_size == 8 ? (entry & ADDRESS_MASK) : (entry & 0xFFFF'F000);
    }

    bool allowed = true;
    if (user && !user_page)
        allowed = false;
    if (access == Access::Write && !writable && (user || (m_state.cr0 & cr0::WP)))
        allowed = false;
    if (access == Access::Execute && !executable)
        allowed = false;
    if (!allowed) {
        error_code = base_code | PF_P;
        return false;
    }
    out.writable = writable;
    out.user = user_page;
    return true;
}

std::optional<u64> Cpu::translate(u64 linear) const
{
    Translation translation;
    u32 error_code;
    if (!walk(linear, Access::Read, false, false, translation, error_code))
        return std::nullopt;
    return translation.physical;
}

u8* Cpu::host_page(u64 linear, Access access, bool supervisor_access, u64* physical)
{
    bool const user = !supervisor_access && m_state.cpl() == 3;
    u64 const page = linear & ~u64 { 0xFFF };
    u32 const slot = (linear >> 12) % TLB_SIZE;
    TlbEntry* tlb = access == Access::Read ? m_tlb_read : access == Access::Write ? m_tlb_write : m_tlb_fetch;
    TlbEntry& entry = tlb[slot];
    if (entry.tag == (page | 1) && (!user || entry.user)) {
        if (physical)
            *physical = entry.physical;
        return entry.host;
    }
    if (m_state.long_mode() && !canonical(linear)) {
        fault(Vector::GP, 0);
        return nullptr;
    }
    Translation translation;
    u32 error_code;
    if (!walk(linear, access, user, true, translation, error_code)) {
        page_fault(linear, error_code);
        return nullptr;
    }
    u64 const physical_page = translation.physical & ~u64 { 0xFFF };
    if (physical)
        *physical = physical_page;
    u64 available;
    u8* host = m_memory.host_pointer(physical_page, &available);
    if (!host || available < 0x1000)
        return nullptr; // MMIO (m_exception stays empty)
    if (access == Access::Write && m_code.is_code_page(physical_page >> 12))
        m_code.invalidate_page(physical_page >> 12);
    entry.tag = page | 1;
    entry.host = host;
    entry.physical = physical_page;
    entry.user = translation.user && (access != Access::Write || translation.writable);
    return host;
}

bool Cpu::read_linear(u64 linear, u8 size, u64& value, bool supervisor_access)
{
    if ((linear & 0xFFF) + size > 0x1000) {
        // Across a page boundary: byte by byte, so each page is checked.
        u64 result = 0;
        for (u8 i = 0; i < size; ++i) {
            u64 byte;
            if (!read_linear(linear + i, 1, byte, supervisor_access))
                return false;
            result |= byte << (8 * i);
        }
        value = result;
        return true;
    }
    u64 physical;
    u8* host = host_page(linear, Access::Read, supervisor_access, &physical);
    if (host) {
        value = 0;
        std::memcpy(&value, host + (linear & 0xFFF), size);
        return true;
    }
    if (m_exception)
        return false;
    return read_physical_slow(physical | (linear & 0xFFF), size, value);
}

bool Cpu::write_linear(u64 linear, u8 size, u64 value, bool supervisor_access)
{
    if ((linear & 0xFFF) + size > 0x1000) {
        // Both pages must be writable before either is written.
        u64 ignored;
        if (!host_page(linear, Access::Write, supervisor_access, &ignored) && m_exception)
            return false;
        if (!host_page(linear + size - 1, Access::Write, supervisor_access, &ignored) && m_exception)
            return false;
        for (u8 i = 0; i < size; ++i) {
            if (!write_linear(linear + i, 1, value >> (8 * i), supervisor_access))
                return false;
        }
        return true;
    }
    u64 physical;
    u8* host = host_page(linear, Access::Write, supervisor_access, &physical);
    if (host) {
        std::memcpy(host + (linear & 0xFFF), &value, size);
        return true;
    }
    if (m_exception)
        return false;
    return write_physical_slow(physical | (linear & 0xFFF), size, value);
}

bool Cpu::read_physical_slow(u64 physical, u8 size, u64& value)
{
    if (m_read_answer) {
        value = *m_read_answer & size_mask(size);
        m_read_answer.reset();
        return true;
    }
    m_exit = CpuExit { CpuExit::Kind::Mmio, false, size, physical, 0 };
    return false;
}

bool Cpu::write_physical_slow(u64 physical, u8 size, u64 value)
{
    m_exit = CpuExit { CpuExit::Kind::Mmio, true, size, physical, value & size_mask(size) };
    return true;
}

u8* Cpu::host_for_rmw(u64 linear, u8 size)
{
    if ((linear & 0xFFF) + size > 0x1000)
        return nullptr;
    u8* host = host_page(linear, Access::Write, false);
    return host ? host + (linear & 0xFFF) : nullptr;
}

void Cpu::flush_tlb()
{
    for (auto* tlb : { m_tlb_read, m_tlb_write, m_tlb_fetch }) {
        for (u32 i = 0; i < TLB_SIZE; ++i)
            tlb[i].tag = ~u64 { 0 };
    }
}

void Cpu::invalidate_page(u64 linear)
{
    u32 const slot = (linear >> 12) % TLB_SIZE;
    for (auto* tlb : { m_tlb_read, m_tlb_write, m_tlb_fetch })
        tlb[slot].tag = ~u64 { 0 };
}

void Cpu::note_code_page(u64 physical_page)
{
    for (u32 i = 0; i < TLB_SIZE; ++i) {
        if ((m_tlb_write[i].physical >> 12) == physical_page)
            m_tlb_write[i].tag = ~u64 { 0 };
    }
}

} // namespace kasou::emu::cpu
