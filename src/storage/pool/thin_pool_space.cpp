#include <algorithm>
#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

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

void ThinPool::zeroer_loop()
{
    using namespace std::chrono_literals;
    std::unique_lock wait_lock(m_background_mutex);
    while (!m_background_stop) {
        wait_lock.unlock();
        auto worked = zero_step();
        if (!worked)
            spdlog::error("pool {}: zeroing free chunks: {}", m_name, worked.error().to_string());
        wait_lock.lock();
        // Straight on while there is work; else a look every 100 ms (space freed by commits).
        if (!worked || !*worked)
            m_background_wake.wait_for(wait_lock, worked ? 100ms : 1s);
    }
}

ErrorOr<bool> ThinPool::zero_step()
{
    std::vector<u64> chunks;
    {
        std::unique_lock lock(m_lock);
        if (m_closed || m_broken || m_space.zeroed_chunks() >= ZEROED_RESERVE_CHUNKS)
            return false;
        chunks = m_space.pick_chunks_to_zero(std::min(ZERO_BATCH_CHUNKS, ZEROED_RESERVE_CHUNKS - m_space.zeroed_chunks()));
    }
    if (chunks.empty())
        return false;
    std::sort(chunks.begin(), chunks.end());
    auto zeroed = [&]() -> ErrorOr<void> {
        // Under the shared lock: no chunk is handed out meanwhile (that takes the exclusive lock),
        // so a chunk still being zeroed here is free while its zeroes are written. A chunk handed
        // out between picking and here is left alone.
        bool wrote = false;
        {
            std::shared_lock lock(m_lock);
            for (size_t first = 0; first < chunks.size();) {
                size_t end = first;
                while (end < chunks.size() && m_space.being_zeroed(chunks[end]) && (end == first || chunks[end] == chunks[end - 1] + 1)
                    && !m_layout.is_durable_hole(chunks[end] * CHUNK_SIZE, CHUNK_SIZE))
                    ++end;
                if (end == first) {
                    ++first; // a hole already, or handed out
                    continue;
                }
                TRY(m_layout.write_zeroes(chunks[first] * CHUNK_SIZE, (end - first) * CHUNK_SIZE));
                wrote = true;
                first = end;
            }
        }
        if (!wrote)
            return {};
        // The flush runs without the lock; what changes the layout waits for it.
        {
            std::unique_lock lock(m_lock);
            wait_for_unlocked_io(lock);
            m_zeroer_flushing = true;
        }
        auto flushed = m_layout.flush();
        std::unique_lock lock(m_lock);
        m_zeroer_flushing = false;
        m_commit_landed.notify_all();
        return flushed;
    }();
    std::unique_lock lock(m_lock);
    if (!zeroed) {
        m_space.zeroing_failed(chunks);
        return tl::unexpected(zeroed.error());
    }
    m_space.zeroing_done(chunks);
    return true;
}

} // namespace kasou::storage
