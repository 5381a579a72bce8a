#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/pool/thin_pool.h"

// The data paths of thin volumes: read, write (allocating and copying on write), zeroing,
// discard and block status.

namespace kasou::storage {

namespace {

std::span<u8 const> zero_chunk()
{
    static std::array<u8, CHUNK_SIZE> const zeroes {};
    return zeroes;
}

} // namespace

u64 ThinPool::volume_size(u64 id) const
{
    std::shared_lock lock(m_lock);
    auto it = m_volumes.find(id);
    return it == m_volumes.end() ? 0 : it->second.size;
}

ErrorOr<VolumeInfo*> ThinPool::checked_range(u64 id, u64 offset, u64 length, char const* what)
{
    if (m_closed)
        return make_errno_error(ESHUTDOWN, fmt::format("pool {} is closed", m_name));
    auto it = m_volumes.find(id);
    if (it == m_volumes.end() || it->second.deleting())
        return make_errno_error(ENOENT, fmt::format("{}: the volume was removed from pool {}", what, m_name));
    auto& volume = it->second;
    if (offset > volume.size || length > volume.size - offset)
        return make_errno_error(EINVAL, fmt::format("{} of {} bytes at offset {} is past the end of '{}' ({} bytes)", what, length, offset, volume.name, volume.size));
    return &volume;
}

ErrorOr<void> ThinPool::read(u64 id, u64 offset, std::span<u8> buffer)
{
    std::shared_lock lock(m_lock);
    auto* volume = TRY(checked_range(id, offset, buffer.size(), "read"));
    u64 done = 0;
    while (done < buffer.size()) {
        u64 position = offset + done;
        u64 chunk = position / CHUNK_SIZE;
        u64 within = position % CHUNK_SIZE;
        u64 length = std::min<u64>(buffer.size() - done, CHUNK_SIZE - within);
        u64 entry = lookup(volume->root, chunk).first;
        // Chunks that follow each other in the pool too are read in one request.
        for (u64 next = 1; entry && done + length < buffer.size(); ++next) {
            if (lookup(volume->root, chunk + next).first != entry + next)
                break;
            length += std::min<u64>(buffer.size() - done - length, CHUNK_SIZE);
        }
        auto part = buffer.subspan(done, length);
        if (entry)
            TRY(m_layout.read((entry - 1) * CHUNK_SIZE + within, part));
        else
            std::memset(part.data(), 0, part.size());
        done += length;
    }
    return {};
}

ErrorOr<void> ThinPool::write_chunk(VolumeInfo& volume, u64 chunk, u64 within, std::span<u8 const> data)
{
    auto [entry, exclusive] = lookup(volume.root, chunk);
    if (entry && exclusive && m_space.writable_in_place(entry - 1))
        return m_layout.write((entry - 1) * CHUNK_SIZE + within, data);
    u64* slot = TRY(writable_leaf_entry(volume, chunk));
    u64 old = *slot;
    auto allocation = TRY(m_space.allocate_data_chunk(reserve_chunks(Reserve::Data)));
    u64 fresh = allocation.chunk;
    // Over a durable hole, with nothing to copy, a crash can only take data written here back to
    // the zeroes the unmapped range read: the mapping may be committed before the data is durable.
    // A chunk the zeroer zeroed and flushed is one; one whose zeroes it has not flushed yet is
    // not, whatever the disk reports (an unwritten extent reads as a hole before it is durable).
    bool hole = false;
    if (!old) {
        hole = allocation.zeroes == SpaceMap::Zeroes::Durable
            || (allocation.zeroes == SpaceMap::Zeroes::Unknown && m_layout.is_durable_hole(fresh * CHUNK_SIZE, CHUNK_SIZE));
    }
    if (!hole)
        m_mapped_data_needs_flush = true;
    auto result = [&]() -> ErrorOr<void> {
        if (within == 0 && data.size() == CHUNK_SIZE)
            return m_layout.write(fresh * CHUNK_SIZE, data);
        // A new chunk is all written, so no stale data of a freed chunk can show through. Without
        // an old chunk to copy, the chunk is zeroed in place (FALLOC_FL_ZERO_RANGE on a file
        // member) unless it is a hole, rather than written from a zero-filled 64 KiB buffer, then
        // the data written: the first write of a chunk costs about one small write.
        if (!old) {
            if (!hole)
                TRY(m_layout.write_zeroes(fresh * CHUNK_SIZE, CHUNK_SIZE));
            return m_layout.write(fresh * CHUNK_SIZE + within, data);
        }
        std::vector<u8> buffer(CHUNK_SIZE);
        TRY(m_layout.read((old - 1) * CHUNK_SIZE, buffer));
        std::memcpy(buffer.data() + within, data.data(), data.size());
        return m_layout.write(fresh * CHUNK_SIZE, buffer);
    }();
    if (!result) {
        m_space.unref(fresh);
        return result;
    }
    *slot = fresh + 1;
    if (old)
        m_space.unref(old - 1);
    m_dirty = true;
    return {};
}

ErrorOr<bool> ThinPool::write_in_place(u64 id, u64 offset, std::span<u8 const> data)
{
    std::shared_lock lock(m_lock);
    auto* volume = TRY(checked_range(id, offset, data.size(), "write"));
    if (m_broken || volume->read_only())
        return false; // the exclusive path reports it
    std::vector<std::pair<u64, std::span<u8 const>>> pieces; // pool offset, data
    for (u64 done = 0; done < data.size();) {
        u64 position = offset + done;
        u64 within = position % CHUNK_SIZE;
        u64 length = std::min<u64>(data.size() - done, CHUNK_SIZE - within);
        auto [entry, exclusive] = lookup(volume->root, position / CHUNK_SIZE);
        if (!entry || !exclusive || !m_space.writable_in_place(entry - 1))
            return false;
        // Mirrored chunks too: two overlapping writes running at once could land in a different
        // order on each copy, and the copies would then disagree for good.
        if (m_layout.copies_at((entry - 1) * CHUNK_SIZE) > 1)
            return false;
        pieces.emplace_back((entry - 1) * CHUNK_SIZE + within, data.subspan(done, length));
        done += length;
    }
    m_data_dirty = true;
    for (auto const& [where, piece] : pieces)
        TRY(m_layout.write(where, piece));
    return true;
}

ErrorOr<void> ThinPool::write(u64 id, u64 offset, std::span<u8 const> data, bool fua)
{
    if (TRY(write_in_place(id, offset, data))) {
        if (!fua)
            return {};
        std::unique_lock lock(m_lock);
        return commit_locked(lock);
    }
    std::unique_lock lock(m_lock);
    TRY(writable_volume(id, "write"));
    auto* volume = TRY(checked_range(id, offset, data.size(), "write"));
    u64 done = 0;
    while (done < data.size()) {
        u64 position = offset + done;
        u64 within = position % CHUNK_SIZE;
        u64 length = std::min<u64>(data.size() - done, CHUNK_SIZE - within);
        m_data_dirty = true;
        TRY(write_chunk(*volume, position / CHUNK_SIZE, within, data.subspan(done, length)));
        done += length;
    }
    if (fua)
        return commit_locked(lock);
    return {};
}

ErrorOr<void> ThinPool::zero_range(u64 id, u64 offset, u64 length, bool unmap_whole_chunks)
{
    std::unique_lock lock(m_lock);
    TRY(writable_volume(id, "zero"));
    auto* volume = TRY(checked_range(id, offset, length, "zero"));
    u64 end = offset + length;
    u64 first_whole = (offset + CHUNK_SIZE - 1) / CHUNK_SIZE;
    u64 end_whole = end / CHUNK_SIZE;
    if (unmap_whole_chunks && first_whole < end_whole)
        TRY(unmap(volume->root, TREE_DEPTH - 1, 0, first_whole, end_whole, Reserve::Node));
    // What is left to zero is mapped: only mapped chunks are visited, so nothing is allocated.
    for (u64 chunk = offset / CHUNK_SIZE; chunk * CHUNK_SIZE < end;) {
        auto mapped = next_mapped(volume->root, TREE_DEPTH - 1, 0, chunk);
        if (!mapped || *mapped * CHUNK_SIZE >= end)
            break;
        chunk = *mapped;
        u64 from = std::max(offset, chunk * CHUNK_SIZE);
        u64 to = std::min(end, (chunk + 1) * CHUNK_SIZE);
        m_data_dirty = true;
        TRY(write_chunk(*volume, chunk, from % CHUNK_SIZE, zero_chunk().first(to - from)));
        ++chunk;
    }
    return {};
}

ErrorOr<void> ThinPool::discard(u64 id, u64 offset, u64 length)
{
    return zero_range(id, offset, length, true);
}

ErrorOr<void> ThinPool::write_zeroes(u64 id, u64 offset, u64 length, bool may_unmap)
{
    return zero_range(id, offset, length, may_unmap);
}

ErrorOr<std::vector<Extent>> ThinPool::block_status(u64 id, u64 offset, u64 length)
{
    std::shared_lock lock(m_lock);
    auto* volume = TRY(checked_range(id, offset, length, "block status"));
    std::vector<Extent> extents;
    u64 end = offset + length;
    for (u64 position = offset; position < end;) {
        u64 chunk = position / CHUNK_SIZE;
        bool allocated = lookup(volume->root, chunk).first != 0;
        u64 extent_end = std::min(end, (chunk + 1) * CHUNK_SIZE);
        if (!allocated) {
            auto next = next_mapped(volume->root, TREE_DEPTH - 1, 0, chunk);
            extent_end = next ? std::min(end, *next * CHUNK_SIZE) : end;
        }
        if (!extents.empty() && extents.back().allocated == allocated)
            extents.back().length += extent_end - position;
        else
            extents.push_back({ position, extent_end - position, allocated, !allocated });
        position = extent_end;
    }
    return extents;
}

} // namespace kasou::storage
