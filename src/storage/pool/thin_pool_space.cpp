#include <cerrno>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/pool/thin_pool.h"

// How much free space is kept for metadata (the reserve), over the pool's SpaceMap.

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
    if (2 * table_blocks > m_space.free_metadata_blocks() + m_space.free_chunks() * BLOCKS_PER_CHUNK)
        return make_errno_error(ENOSPC, fmt::format("pool {} is full: no room for the metadata of another volume; add a disk with 'kasou pool add'", m_name));
    return {};
}

ErrorOr<u64> ThinPool::allocate_metadata_block(Reserve level)
{
    return m_space.allocate_metadata_block(reserve_chunks(level));
}

} // namespace kasou::storage
