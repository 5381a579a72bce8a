#include "storage/pool/space_map.h"

#include <algorithm>
#include <cerrno>

#include "base/try.h"

namespace kasou::storage {

SpaceMap::SpaceMap(std::string pool_name)
    : m_pool_name(std::move(pool_name))
{
}

void SpaceMap::grow(u64 chunks)
{
    u64 old = m_refs.size();
    m_refs.resize(chunks, 0);
    m_flags.resize(chunks, 0);
    m_free += chunks - old;
}

u64 SpaceMap::data_chunks() const
{
    return static_cast<u64>(std::count_if(m_refs.begin(), m_refs.end(), [](u32 refs) { return refs > 0; }));
}

u64 SpaceMap::metadata_chunks() const
{
    return static_cast<u64>(std::count_if(m_flags.begin(), m_flags.end(), [](u8 flags) { return flags & METADATA; }));
}

SpaceMap::Zeroes SpaceMap::take(u64 chunk)
{
    u8& flags = m_flags[chunk];
    Zeroes zeroes = flags & ZEROED ? Zeroes::Durable : flags & ZEROING ? Zeroes::NotDurable : Zeroes::Unknown;
    if (flags & ZEROED)
        --m_zeroed_count;
    flags &= static_cast<u8>(~(ZEROED | ZEROING));
    --m_free;
    return zeroes;
}

ErrorOr<SpaceMap::Allocation> SpaceMap::allocate_chunk(u64 keep_free)
{
    if (m_free <= keep_free)
        return make_errno_error(ENOSPC, fmt::format("pool {} is full ({} of its free chunks are kept for metadata); add a disk with 'kasou pool add'",
            m_pool_name, m_free));
    while (!m_zeroed.empty()) {
        u64 chunk = m_zeroed.front();
        m_zeroed.pop_front();
        // Entries go stale when a commit sorted the chunk's flags out meanwhile.
        if ((m_flags[chunk] & ZEROED) && is_free(chunk))
            return Allocation { chunk, take(chunk) };
    }
    // Chunks being zeroed only when nothing else is left: the zeroer's zeroes are not durable yet.
    u64 count = m_refs.size();
    for (u8 avoid : { static_cast<u8>(ZEROING), static_cast<u8>(0) }) {
        for (u64 step = 0; step < count; ++step) {
            u64 chunk = (m_cursor + step) % count;
            if (is_free(chunk) && !(m_flags[chunk] & avoid)) {
                m_cursor = chunk + 1;
                return Allocation { chunk, take(chunk) };
            }
        }
    }
    return make_errno_error(ENOSPC, fmt::format("pool {}: free chunk count is wrong", m_pool_name));
}

ErrorOr<SpaceMap::Allocation> SpaceMap::allocate_data_chunk(u64 keep_free)
{
    auto allocation = TRY(allocate_chunk(keep_free));
    m_refs[allocation.chunk] = 1;
    flag(allocation.chunk, FRESH);
    return allocation;
}

ErrorOr<u64> SpaceMap::allocate_metadata_block(u64 keep_free)
{
    if (m_free_blocks.empty()) {
        u64 chunk = TRY(allocate_chunk(keep_free)).chunk;
        m_flags[chunk] |= METADATA;
        for (u64 block = chunk * BLOCKS_PER_CHUNK + BLOCKS_PER_CHUNK; block-- > chunk * BLOCKS_PER_CHUNK;)
            m_free_blocks.push_back(block);
    }
    u64 block = m_free_blocks.back();
    m_free_blocks.pop_back();
    return block;
}

void SpaceMap::release_metadata_block(u64 block, bool fresh)
{
    if (fresh)
        m_free_blocks.push_back(block);
    else
        m_pending_blocks.push_back(block);
}

void SpaceMap::free_blocks(std::vector<u64> const& blocks)
{
    m_free_blocks.insert(m_free_blocks.end(), blocks.begin(), blocks.end());
}

void SpaceMap::flag(u64 chunk, u8 flags)
{
    u8& current = m_flags[chunk];
    if (!(current & LISTED))
        m_flagged.push_back(chunk);
    current |= flags | LISTED;
}

void SpaceMap::ref(u64 chunk)
{
    ++m_refs[chunk];
    flag(chunk, TOUCHED);
}

void SpaceMap::unref(u64 chunk)
{
    flag(chunk, TOUCHED);
    if (--m_refs[chunk] > 0)
        return;
    if (m_flags[chunk] & FRESH) {
        // Never reachable from the committed state: free at once (still listed).
        m_flags[chunk] = LISTED;
        ++m_free;
        return;
    }
    m_flags[chunk] |= PENDING;
}

bool SpaceMap::writable_in_place(u64 chunk) const
{
    u8 flags = m_flags[chunk];
    return m_refs[chunk] == 1 && !(flags & IN_FLIGHT) && ((flags & FRESH) || !(flags & TOUCHED));
}

SpaceMap::CommitSet SpaceMap::gather_commit()
{
    // Chunks released since the last commit become free once this one lands; chunks whose
    // reference count changed may still be shared in the state on disk until then, so nothing
    // under them is written in place before it lands; chunks merely allocated are, from now on,
    // part of the state this commit writes (released again, they wait for the next one).
    CommitSet set;
    for (u64 chunk : m_flagged) {
        u8& flags = m_flags[chunk];
        flags &= static_cast<u8>(~LISTED);
        if (flags & PENDING) {
            set.released_chunks.push_back(chunk);
        } else if (flags & TOUCHED) {
            flags = static_cast<u8>((flags & METADATA) | IN_FLIGHT);
            set.touched_chunks.push_back(chunk);
        } else {
            flags &= METADATA | ZEROED | ZEROING;
        }
    }
    m_flagged.clear();
    set.released_blocks = std::move(m_pending_blocks);
    m_pending_blocks.clear();
    return set;
}

void SpaceMap::land_commit(CommitSet const& set)
{
    free_blocks(set.released_blocks);
    for (u64 chunk : set.released_chunks) {
        m_flags[chunk] &= METADATA;
        if (m_refs[chunk] == 0)
            ++m_free;
    }
    for (u64 chunk : set.touched_chunks)
        m_flags[chunk] &= static_cast<u8>(~IN_FLIGHT);
}

std::vector<u64> SpaceMap::pick_chunks_to_zero(u64 count)
{
    std::vector<u64> picked;
    u64 total = m_refs.size();
    for (u64 step = 0; step < total && picked.size() < count; ++step) {
        u64 chunk = (m_zero_cursor + step) % total;
        if (is_free(chunk) && !(m_flags[chunk] & (ZEROED | ZEROING | LISTED))) {
            m_flags[chunk] |= ZEROING;
            picked.push_back(chunk);
        }
    }
    if (!picked.empty())
        m_zero_cursor = (picked.back() + 1) % total;
    return picked;
}

void SpaceMap::zeroing_done(std::vector<u64> const& chunks)
{
    for (u64 chunk : chunks) {
        u8& flags = m_flags[chunk];
        if (!(flags & ZEROING))
            continue; // handed out meanwhile
        flags = static_cast<u8>((flags & ~ZEROING) | ZEROED);
        ++m_zeroed_count;
        m_zeroed.push_back(chunk);
    }
}

void SpaceMap::zeroing_failed(std::vector<u64> const& chunks)
{
    for (u64 chunk : chunks)
        m_flags[chunk] &= static_cast<u8>(~ZEROING);
}

} // namespace kasou::storage
