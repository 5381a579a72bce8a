#include <cstring>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "storage/pool/thin_pool.h"

// `pool check`: recomputes every reference count from the trees, compares space accounting,
// and reads every committed metadata block back from every copy.

namespace kasou::storage {

std::vector<std::string> ThinPool::check()
{
    std::unique_lock lock(m_lock);
    wait_for_unlocked_io(lock);
    std::vector<std::string> faults;
    auto fault = [&](std::string text) { faults.push_back(std::move(text)); };

    for (u32 index = 0; index < m_layout.members().size(); ++index) {
        auto const& member = *m_layout.members()[index];
        if (member.state == MemberState::Rebuilding)
            fault(fmt::format("member {} ({}) is being rebuilt ({} of {} bytes copied): the pool is degraded until it is done", index,
                member.disk->name(), member.rebuilt.load(), member.usable_size));
        else if (member.state != MemberState::Healthy)
            fault(fmt::format("member {} ({}) has failed: the pool is degraded; replace it with 'kasou pool repair'", index,
                member.disk ? member.disk->name() : member.uuid.to_string()));
    }

    std::set<std::string> names;
    std::unordered_map<u64, u32> node_refs;
    std::vector<u32> chunk_refs(m_space.chunks(), 0);
    // Walks a tree counting references the way load() does, without trusting the counts kept.
    auto walk = [&](auto& self, u64 ref, u32 level) -> void {
        if (!m_nodes.contains(ref - 1)) {
            fault(fmt::format("node {} is referenced but not loaded", ref - 1));
            return;
        }
        if (node_refs[ref - 1]++ > 0)
            return;
        auto const& current = node(ref);
        if (current.level != level)
            fault(fmt::format("node {} has level {} but is reached at level {}", ref - 1, current.level, level));
        for (u64 entry : *current.entries) {
            if (!entry)
                continue;
            if (level > 0)
                self(self, entry, level - 1);
            else if (entry - 1 >= chunk_refs.size())
                fault(fmt::format("node {} maps chunk {} outside the pool", ref - 1, entry - 1));
            else
                ++chunk_refs[entry - 1];
        }
    };
    for (auto const& [id, volume] : m_volumes) {
        if (!volume.deleting() && !names.insert(volume.name).second)
            fault(fmt::format("volume name '{}' is used twice", volume.name));
        if (volume.root)
            walk(walk, volume.root, TREE_DEPTH - 1);
        u64 chunks = (volume.size + CHUNK_SIZE - 1) / CHUNK_SIZE;
        if (!volume.deleting() && volume.root && next_mapped(volume.root, TREE_DEPTH - 1, 0, chunks))
            fault(fmt::format("volume '{}' maps chunks beyond its size", volume.name));
    }
    for (auto const& [block, current] : m_nodes) {
        u32 expected = node_refs.contains(block) ? node_refs[block] : 0;
        if (current.refs != expected)
            fault(fmt::format("node {} has reference count {} but {} references", block, current.refs, expected));
        if (!m_space.is_metadata(block / BLOCKS_PER_CHUNK))
            fault(fmt::format("node {} lies in chunk {} which is not marked as metadata", block, block / BLOCKS_PER_CHUNK));
    }
    u64 free_chunks = 0;
    for (u64 chunk = 0; chunk < chunk_refs.size(); ++chunk) {
        if (chunk_refs[chunk] != m_space.refs(chunk))
            fault(fmt::format("chunk {} has reference count {} but {} references", chunk, m_space.refs(chunk), chunk_refs[chunk]));
        if (chunk_refs[chunk] && m_space.is_metadata(chunk))
            fault(fmt::format("chunk {} is used both for data and metadata", chunk));
        if (m_space.refs(chunk) == 0 && !m_space.is_metadata(chunk) && !m_space.is_pending(chunk))
            ++free_chunks;
    }
    if (free_chunks != m_space.free_chunks())
        fault(fmt::format("{} chunks are free but {} are counted as free", free_chunks, m_space.free_chunks()));

    // Committed metadata must read back, on every copy, as it is held in memory.
    auto verify_copies = [&](u64 block_number, u64 magic, std::span<u8 const> expected, u64 expected_offset) {
        for (u32 copy = 0; copy < m_layout.copies_at(block_number * BLOCK_SIZE); ++copy) {
            Block block {};
            std::string what = fmt::format("metadata block {} (copy {})", block_number, copy);
            if (auto result = m_layout.read_copy(block_number * BLOCK_SIZE, block, copy); !result) {
                fault(fmt::format("{}: {}", what, result.error().to_string()));
                continue;
            }
            if (view_as<BlockHeader>(block).magic == 0)
                continue; // a failed copy is not read; its absence is reported above
            if (auto result = verify_block(block, magic, what); !result) {
                fault(result.error().to_string());
                continue;
            }
            if (!expected.empty() && std::memcmp(block.data() + expected_offset, expected.data(), expected.size()) != 0)
                fault(fmt::format("{} differs from the pool's metadata", what));
        }
    };
    for (auto const& [block, current] : m_nodes) {
        if (!current.fresh)
            verify_copies(block, NODE_MAGIC, std::span(reinterpret_cast<u8 const*>(current.entries->data()), sizeof(Entries)), sizeof(NodeHeader));
    }
    for (u64 block : m_table_blocks)
        verify_copies(block, VOLUME_TABLE_MAGIC, {}, 0);
    return faults;
}

} // namespace kasou::storage
