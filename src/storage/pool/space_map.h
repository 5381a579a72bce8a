#pragma once

#include <deque>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/error.h"
#include "storage/pool/format.h"

namespace kasou::storage {

// The space map of a thin pool: for every CHUNK_SIZE chunk of the logical space, whether it is
// free, holds data (with the number of mapping-tree leaf entries that reference it) or holds
// metadata blocks; which metadata blocks are free; and what changed since the last commit, so
// that a commit can tell which chunks and blocks become free once it has landed.
//
// Invariants:
// - free_chunks() is the number of chunks with no reference, no metadata and not pending;
// - a chunk is never both metadata and referenced data;
// - a chunk or metadata block released since the last commit gathered (pending) is not handed
//   out again before the commit that covers its release has landed: the committed state may
//   still reach it;
// - a chunk marked zeroed is free and reads as zeroes now and after any crash; a chunk being
//   zeroed (picked by the zeroer, its zeroes not yet flushed) is handed out only when no other
//   free chunk is left, and then as one whose zeroes are not durable;
// - every chunk with a change to sort out at the next commit is listed once (flagged).
// Not thread-safe: the pool guards it with its lock (shared for the const members).
class SpaceMap {
public:
    // What a newly allocated chunk is known to hold.
    enum class Zeroes {
        Unknown,    // whatever was there: ask the disks whether it is a durable hole
        Durable,    // zeroes now and after any crash: nothing needs writing or flushing first
        NotDurable, // zeroes not yet durable: zero it and flush before the commit that maps it
    };
    struct Allocation {
        u64 chunk { 0 };
        Zeroes zeroes { Zeroes::Unknown };
    };
    // What a commit frees once it has landed, and what it keeps from being written in place
    // until then.
    struct CommitSet {
        std::vector<u64> released_chunks;
        std::vector<u64> touched_chunks;
        std::vector<u64> released_blocks;
    };

    explicit SpaceMap(std::string pool_name);

    // Adds free chunks up to `chunks` (the pool grew).
    void grow(u64 chunks);
    u64 chunks() const { return m_refs.size(); }
    u64 free_chunks() const { return m_free; }
    u64 free_metadata_blocks() const { return m_free_blocks.size(); }
    u32 refs(u64 chunk) const { return m_refs[chunk]; }
    bool is_metadata(u64 chunk) const { return m_flags[chunk] & METADATA; }
    bool is_pending(u64 chunk) const { return m_flags[chunk] & PENDING; }
    // Chunks held by data, and chunks given to metadata.
    u64 data_chunks() const;
    u64 metadata_chunks() const;

    // Loading the committed state: a leaf entry's reference, a metadata block in use; then
    // finish_load counts what is free (in_use tells which blocks of metadata chunks are used).
    void load_ref(u64 chunk) { ++m_refs[chunk]; }
    void mark_metadata(u64 block) { m_flags[block / BLOCKS_PER_CHUNK] |= METADATA; }
    template<typename InUse>
    ErrorOr<void> finish_load(InUse const& in_use);

    // A free chunk, leaving keep_free chunks free; ENOSPC naming the pool when none is left.
    // Zeroed chunks are handed out first.
    ErrorOr<Allocation> allocate_chunk(u64 keep_free);
    // A chunk for new data: allocated, referenced once, and new since the last commit.
    ErrorOr<Allocation> allocate_data_chunk(u64 keep_free);
    ErrorOr<u64> allocate_metadata_block(u64 keep_free);
    // fresh: the block was allocated since the last commit (free at once), else pending.
    void release_metadata_block(u64 block, bool fresh);
    void ref(u64 chunk);
    void unref(u64 chunk);
    // A data chunk may be overwritten in place: one reference, not shared or released since the
    // last commit (or allocated since), and not shared by the state the commit in flight writes.
    bool writable_in_place(u64 chunk) const;

    // Commits: gather sorts out the flagged chunks and takes the pending blocks (under the pool's
    // exclusive lock, as the commit gathers); land frees them once the commit is durable.
    CommitSet gather_commit();
    void land_commit(CommitSet const& set);
    // Blocks freed without a commit (the previous volume table, once the new one landed).
    void free_blocks(std::vector<u64> const& blocks);

    // The background zeroer: picks up to `count` free chunks that are neither zeroed nor being
    // zeroed, marking them being zeroed; zeroing_done marks those still being zeroed (not
    // handed out meanwhile) as zeroed, once their zeroes are durable; zeroing_failed puts them
    // back. zeroed_chunks() counts the reserve.
    std::vector<u64> pick_chunks_to_zero(u64 count);
    bool being_zeroed(u64 chunk) const { return m_flags[chunk] & ZEROING; }
    void zeroing_done(std::vector<u64> const& chunks);
    void zeroing_failed(std::vector<u64> const& chunks);
    u64 zeroed_chunks() const { return m_zeroed_count; }

private:
    enum Flag : u8 {
        METADATA = 1, // holds metadata blocks
        PENDING = 2,  // released since the last commit; free after the next one
        FRESH = 4,    // allocated since the last commit
        TOUCHED = 8,  // reference count changed since the last commit
        // Reference count changed before the commit in flight gathered its state: the state on
        // disk may still share the chunk, so it is not written in place until that commit lands.
        IN_FLIGHT = 16,
        LISTED = 32,  // in m_flagged, which lists each chunk once
        ZEROED = 64,  // free, and zeroes now and after any crash
        ZEROING = 128, // free, picked by the zeroer, its zeroes not yet durable
    };
    void flag(u64 chunk, u8 flags);
    bool is_free(u64 chunk) const { return m_refs[chunk] == 0 && !(m_flags[chunk] & (METADATA | PENDING)); }
    // Takes chunk out of the free space; what it is known to hold.
    Zeroes take(u64 chunk);

    std::string m_pool_name;
    std::vector<u32> m_refs;
    std::vector<u8> m_flags;
    std::vector<u64> m_flagged;      // LISTED chunks, to sort out at the next commit
    u64 m_free { 0 };
    u64 m_cursor { 0 };              // where the search for a free chunk starts
    u64 m_zero_cursor { 0 };         // where the zeroer's search starts
    std::deque<u64> m_zeroed;        // ZEROED chunks in the order they were zeroed (some stale)
    u64 m_zeroed_count { 0 };        // chunks with ZEROED
    std::vector<u64> m_free_blocks;  // free metadata blocks
    std::vector<u64> m_pending_blocks;
};

template<typename InUse>
ErrorOr<void> SpaceMap::finish_load(InUse const& in_use)
{
    for (u64 chunk = 0; chunk < m_refs.size(); ++chunk) {
        bool metadata = m_flags[chunk] & METADATA;
        if (metadata && m_refs[chunk] > 0)
            return make_error(ErrorKind::Corrupt, fmt::format("chunk {} is used both for metadata and for data", chunk));
        if (metadata || m_refs[chunk] > 0)
            --m_free;
        if (!metadata)
            continue;
        for (u64 block = chunk * BLOCKS_PER_CHUNK + BLOCKS_PER_CHUNK; block-- > chunk * BLOCKS_PER_CHUNK;) {
            if (!in_use(block))
                m_free_blocks.push_back(block);
        }
    }
    return {};
}

} // namespace kasou::storage
