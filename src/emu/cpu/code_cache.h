#pragma once

#include <unordered_map>
#include <vector>

#include "base/types.h"
#include "emu/cpu/decoded_instruction.h"
#include "emu/cpu/decoder.h"

namespace kasou::emu::cpu {

// A straight run of decoded instructions starting at one guest-physical address, ending at the
// first control transfer or system instruction, at the end of its 4 KiB page, or at a size limit.
struct Block {
    std::vector<DecodedInstruction> instructions;
};

// Decoded blocks by guest-physical address and code mode, grouped by the page they start in.
// A write to a page that holds code drops every block of that page (the CPU routes such writes
// here through its slow path: soft-TLB write entries are never made for code pages) and bumps
// generation(), so an executor that was inside a dropped block stops using it. Per vCPU, not
// shared: writes by other vCPUs to code are not seen (FIXME: SMP code modification).
class CodeCache {
public:
    static constexpr u32 MAX_BLOCK_INSTRUCTIONS = 64;

    Block const* find(u64 physical, CodeMode mode) const
    {
        auto it = m_blocks.find(key(physical, mode));
        return it == m_blocks.end() ? nullptr : &it->second;
    }
    Block const& insert(u64 physical, CodeMode mode, Block block);
    bool is_code_page(u64 page) const { return m_pages.contains(page); }
    // A write to guest-physical `page` (page number): drops its blocks.
    void invalidate_page(u64 page);
    void clear();
    u64 generation() const { return m_generation; }
    // Frees the blocks dropped since the last call; only when no instruction of them is in use.
    void collect() { m_dropped.clear(); }

private:
    static u64 key(u64 physical, CodeMode mode) { return (physical << 3) | static_cast<u64>(mode); }

    using Blocks = std::unordered_map<u64, Block>;
    Blocks m_blocks;
    // Dropped while an instruction of theirs may still run (the write that dropped them).
    std::vector<Blocks::node_type> m_dropped;
    std::unordered_map<u64, std::vector<u64>> m_pages; // page number -> keys of its blocks
    u64 m_generation { 0 };
};

} // namespace kasou::emu::cpu
