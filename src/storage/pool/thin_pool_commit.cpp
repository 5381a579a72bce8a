#include <algorithm>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/pool/thin_pool.h"

// Commits: what a commit writes is gathered under the exclusive lock, written and flushed without
// it (I/O goes on meanwhile), and the new state is published under the lock again.

namespace kasou::storage {

ErrorOr<void> ThinPool::commit()
{
    std::unique_lock lock(m_lock);
    return commit_locked(lock);
}

ErrorOr<void> ThinPool::flush()
{
    return commit();
}

ErrorOr<void> ThinPool::commit_mappings()
{
    std::unique_lock lock(m_lock);
    return commit_locked(lock, CommitScope::Mappings);
}

void ThinPool::wait_for_unlocked_io(std::unique_lock<std::shared_mutex>& lock)
{
    m_commit_landed.wait(lock, [this] { return !m_commit_in_flight && !m_zeroer_flushing; });
}

ErrorOr<void> ThinPool::commit_locked(std::unique_lock<std::shared_mutex>& lock, CommitScope scope)
{
    // One commit at a time: this one covers what the one in flight gathered too late for.
    wait_for_unlocked_io(lock);
    TRY(check_usable());
    auto batch = TRY(gather_commit(scope));
    if (!batch)
        return {};
    m_commit_in_flight = true;
    lock.unlock();
    ErrorOr<void> written;
    try {
        written = write_commit(*batch);
    } catch (std::exception const& exception) {
        // Never leave a commit in flight for good: every later one would wait for it.
        written = make_error(ErrorKind::Internal, fmt::format("commit of pool {}: {}", m_name, exception.what()));
    }
    lock.lock();
    m_commit_in_flight = false;
    m_commit_landed.notify_all();
    if (!written) {
        m_broken = written.error();
        return written;
    }
    land_commit(*batch);
    return {};
}

ErrorOr<std::optional<ThinPool::CommitBatch>> ThinPool::gather_commit(CommitScope scope)
{
    bool members_changed = m_layout.take_members_changed();
    CommitBatch batch;
    batch.flush_data = scope == CommitScope::Data || m_mapped_data_needs_flush;
    // No mirror write is in flight now: the flush ahead covers all writes so far.
    if (batch.flush_data)
        m_layout.begin_settle_intents();
    if (!m_dirty && !members_changed) {
        if (!m_data_dirty || !batch.flush_data)
            return std::optional<CommitBatch> {};
        // Data only: a flush of the members, no new metadata.
        m_data_dirty = false;
        return std::optional { std::move(batch) };
    }
    // The volume table is rewritten whole into free blocks: it is small (VOLUMES_PER_TABLE_BLOCK
    // volumes a block) and this keeps it copy-on-write like the trees.
    u64 table_blocks = (m_volumes.size() + VOLUMES_PER_TABLE_BLOCK - 1) / VOLUMES_PER_TABLE_BLOCK;
    for (u64 i = 0; i < table_blocks; ++i) {
        auto block = allocate_metadata_block(Reserve::Commit);
        if (!block) {
            for (u64 allocated : batch.table)
                m_space.release_metadata_block(allocated, true);
            return tl::unexpected(block.error());
        }
        batch.table.push_back(*block);
    }
    batch.metadata = true;
    batch.generation = m_generation + 1;
    batch.next_volume_id = m_next_volume_id;

    // The nodes written since the last commit, copied: from here on they are part of the state
    // this commit makes current, so later writes copy them rather than change them in place.
    for (u64 block_number : m_fresh_nodes) {
        auto it = m_nodes.find(block_number);
        if (it == m_nodes.end() || !it->second.fresh)
            continue;
        auto& block = batch.blocks.emplace_back(MetadataWrite { block_number, NODE_MAGIC, {} }).block;
        auto& header = view_as<NodeHeader>(block);
        header.block = block_number;
        header.level = it->second.level;
        header.generation = batch.generation;
        std::memcpy(block.data() + sizeof(NodeHeader), it->second.entries->data(), sizeof(Entries));
        it->second.fresh = false;
    }
    m_fresh_nodes.clear();

    auto volume = m_volumes.begin();
    for (size_t i = 0; i < batch.table.size(); ++i) {
        auto& block = batch.blocks.emplace_back(MetadataWrite { batch.table[i], VOLUME_TABLE_MAGIC, {} }).block;
        auto& header = view_as<VolumeTableHeader>(block);
        header.block = batch.table[i];
        header.next = i + 1 < batch.table.size() ? batch.table[i + 1] + 1 : 0;
        auto* records = reinterpret_cast<VolumeRecord*>(block.data() + sizeof(VolumeTableHeader));
        for (; volume != m_volumes.end() && header.count < VOLUMES_PER_TABLE_BLOCK; ++volume) {
            auto& record = records[header.count++];
            auto const& info = volume->second;
            record.id = info.id;
            record.size = info.size;
            record.root = info.root;
            record.origin_id = info.origin_id;
            record.created = info.created;
            record.flags = info.flags;
            copy_name(record.name, info.name);
        }
    }

    // Nodes whose reference count changed may still be shared in the state on disk until this
    // commit lands, so nothing under them is written in place before it does (the space map
    // does the same for chunks).
    batch.space = m_space.gather_commit();
    for (u64 block_number : m_touched_nodes) {
        if (auto it = m_nodes.find(block_number); it != m_nodes.end() && it->second.touched) {
            it->second.touched = false;
            it->second.in_flight = true;
            batch.touched_nodes.push_back(block_number);
        }
    }
    m_touched_nodes.clear();
    m_dirty = false;
    m_mapped_data_needs_flush = false;
    if (batch.flush_data)
        m_data_dirty = false;
    return std::optional { std::move(batch) };
}

ErrorOr<void> ThinPool::write_commit(CommitBatch& batch)
{
    if (!batch.metadata) {
        TRY(m_layout.flush());
        return m_layout.finish_settle_intents();
    }
    // Blocks that follow each other go out in one write: a commit's nodes mostly do, taken in
    // order from the same metadata chunks.
    std::sort(batch.blocks.begin(), batch.blocks.end(), [](auto const& a, auto const& b) { return a.number < b.number; });
    std::vector<u8> run;
    for (size_t first = 0; first < batch.blocks.size();) {
        size_t end = first + 1;
        while (end < batch.blocks.size() && batch.blocks[end].number == batch.blocks[end - 1].number + 1)
            ++end;
        run.resize((end - first) * BLOCK_SIZE);
        for (size_t i = first; i < end; ++i) {
            seal_block(batch.blocks[i].block, batch.blocks[i].magic);
            std::memcpy(run.data() + (i - first) * BLOCK_SIZE, batch.blocks[i].block.data(), BLOCK_SIZE);
        }
        // Without a flush of the data, each run is made durable by itself: the members' caches
        // keep the data written meanwhile, which nothing here has to wait for.
        u64 offset = batch.blocks[first].number * BLOCK_SIZE;
        TRY(batch.flush_data ? m_layout.write(offset, run) : m_layout.write_durable(offset, run));
        first = end;
    }
    // Data and new metadata are durable before the superblock that points to them.
    if (batch.flush_data) {
        TRY(m_layout.flush());
        TRY(m_layout.finish_settle_intents());
    }
    // The layout changes only while no commit is in flight (wait_for_unlocked_io); member
    // failures found by the writes above are recorded.
    Block block {};
    auto& superblock = view_as<Superblock>(block);
    superblock.generation = batch.generation;
    superblock.pool_uuid = m_uuid;
    copy_name(superblock.pool_name, m_name);
    superblock.volume_table = batch.table.empty() ? 0 : batch.table.front() + 1;
    superblock.next_volume_id = batch.next_volume_id;
    m_layout.describe(superblock);
    seal_block(block, SUPERBLOCK_MAGIC);
    return m_layout.write_superblock(block, static_cast<u32>(batch.generation % 2));
}

void ThinPool::land_commit(CommitBatch& batch)
{
    if (!batch.metadata)
        return;
    m_generation = batch.generation;
    m_space.free_blocks(m_table_blocks);
    m_table_blocks = std::move(batch.table);
    m_space.land_commit(batch.space);
    for (u64 block_number : batch.touched_nodes) {
        // A node released meanwhile keeps its block pending past this commit: no other took it.
        if (auto it = m_nodes.find(block_number); it != m_nodes.end())
            it->second.in_flight = false;
    }
    m_last_commit = std::chrono::steady_clock::now();
}

} // namespace kasou::storage
