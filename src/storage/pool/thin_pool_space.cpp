#include <cerrno>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/pool/thin_pool.h"

// Allocation of data chunks and metadata blocks, and data chunk reference counts.

namespace kasou::storage {

u64 ThinPool::reserve_chunks(Reserve level) const
{
    return reserve_chunks_for(level, m_volumes.size());
}

u64 ThinPool::reserve_chunks_for(Reserve level, u64 volumes)
{
    // A commit rewrites the volume table: enough blocks for it, whatever else ran out.
    u64 commit = 1 + volumes / (VOLUMES_PER_TABLE_BLOCK * BLOCKS_PER_CHUNK);
    switch (level) {
    case Reserve::Data:
        // Room for the tree nodes the writes of one transaction copy, beyond the commit's needs.
        return commit + 8;
    case Reserve::Node:
        return commit;
    case Reserve::Commit:
        return 0;
    }
    return 0;
}

u64 ThinPool::minimum_chunks()
{
    // Measured: one chunk fewer, and the first write to the first volume meets ENOSPC.
    return reserve_chunks_for(Reserve::Data, 1) + 2;
}

ErrorOr<void> ThinPool::check_room_for_volume() const
{
    // A commit writes the new table into free metadata blocks and free chunks before it frees
    // the old one. Room for two tables: this commit's, and the next one's (a removal, say), which
    // must still find room once this one has freed the smaller old table.
    u64 table_blocks = (m_volumes.size() + 1 + VOLUMES_PER_TABLE_BLOCK - 1) / VOLUMES_PER_TABLE_BLOCK;
    if (2 * table_blocks > m_free_metadata_blocks.size() + m_free_chunks * BLOCKS_PER_CHUNK)
        return make_errno_error(ENOSPC, fmt::format("pool {} is full: no room for the metadata of another volume; add a disk with 'kasou pool add'", m_name));
    return {};
}

ErrorOr<u64> ThinPool::allocate_chunk(Reserve level)
{
    if (m_free_chunks <= reserve_chunks(level))
        return make_errno_error(ENOSPC, fmt::format("pool {} is full ({} of its free chunks are kept for metadata); add a disk with 'kasou pool add'",
            m_name, m_free_chunks));
    u64 count = m_chunk_refs.size();
    for (u64 step = 0; step < count; ++step) {
        u64 chunk = (m_alloc_cursor + step) % count;
        if (m_chunk_refs[chunk] == 0 && !(m_chunk_flags[chunk] & (CHUNK_METADATA | CHUNK_PENDING))) {
            m_alloc_cursor = chunk + 1;
            --m_free_chunks;
            return chunk;
        }
    }
    return make_errno_error(ENOSPC, fmt::format("pool {}: free chunk count is wrong", m_name));
}

ErrorOr<u64> ThinPool::allocate_metadata_block(Reserve level)
{
    if (m_free_metadata_blocks.empty()) {
        u64 chunk = TRY(allocate_chunk(level));
        m_chunk_flags[chunk] |= CHUNK_METADATA;
        for (u64 block = chunk * BLOCKS_PER_CHUNK + BLOCKS_PER_CHUNK; block-- > chunk * BLOCKS_PER_CHUNK;)
            m_free_metadata_blocks.push_back(block);
    }
    u64 block = m_free_metadata_blocks.back();
    m_free_metadata_blocks.pop_back();
    return block;
}

void ThinPool::release_metadata_block(u64 block, bool fresh)
{
    if (fresh)
        m_free_metadata_blocks.push_back(block);
    else
        m_pending_metadata_blocks.push_back(block);
}

void ThinPool::flag_chunk(u64 chunk, u8 flags)
{
    u8& current = m_chunk_flags[chunk];
    if (!(current & CHUNK_LISTED))
        m_flagged_chunks.push_back(chunk);
    current |= flags | CHUNK_LISTED;
}

void ThinPool::chunk_ref(u64 chunk)
{
    ++m_chunk_refs[chunk];
    flag_chunk(chunk, CHUNK_TOUCHED);
}

void ThinPool::chunk_unref(u64 chunk)
{
    flag_chunk(chunk, CHUNK_TOUCHED);
    if (--m_chunk_refs[chunk] > 0)
        return;
    if (m_chunk_flags[chunk] & CHUNK_FRESH) {
        // Never reachable from the committed state: free at once (still listed).
        m_chunk_flags[chunk] = CHUNK_LISTED;
        ++m_free_chunks;
        return;
    }
    m_chunk_flags[chunk] |= CHUNK_PENDING;
}

bool ThinPool::chunk_writable_in_place(u64 chunk) const
{
    u8 flags = m_chunk_flags[chunk];
    return m_chunk_refs[chunk] == 1 && !(flags & CHUNK_IN_FLIGHT) && ((flags & CHUNK_FRESH) || !(flags & CHUNK_TOUCHED));
}

} // namespace kasou::storage
