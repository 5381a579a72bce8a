#include <algorithm>

#include "base/try.h"
#include "storage/pool/thin_pool.h"

// The copy-on-write mapping trees: lookup, shadowing, unmapping, reference counting of nodes.

namespace kasou::storage {

u64 ThinPool::span_of(u32 level)
{
    u64 span = NODE_FANOUT;
    for (u32 i = 0; i < level; ++i)
        span *= NODE_FANOUT;
    return span;
}

u64 ThinPool::child_index(u64 chunk, u32 level)
{
    return chunk / (span_of(level) / NODE_FANOUT) % NODE_FANOUT;
}

std::pair<u64, bool> ThinPool::lookup(u64 root, u64 chunk) const
{
    u64 ref = root;
    bool exclusive = true;
    for (u32 level = TREE_DEPTH - 1;; --level) {
        if (!ref)
            return { 0, exclusive };
        auto const& current = node(ref);
        exclusive = exclusive && current.refs == 1 && !current.touched && !current.in_flight;
        ref = (*current.entries)[child_index(chunk, level)];
        if (level == 0)
            return { ref, exclusive };
    }
}

ErrorOr<u64> ThinPool::make_writable(u64 ref, u32 level, Reserve reserve)
{
    if (ref && node(ref).fresh && node(ref).refs == 1)
        return ref;
    u64 block = TRY(allocate_metadata_block(reserve));
    Node copy;
    copy.level = level;
    copy.refs = 1;
    copy.fresh = true;
    if (!ref) {
        copy.entries = std::make_unique<Entries>();
    } else {
        auto& old = node(ref);
        copy.entries = std::make_unique<Entries>(*old.entries);
        if (old.refs == 1) {
            // Moved, not shared: the children keep their counts.
            bool fresh = old.fresh;
            m_nodes.erase(ref - 1);
            m_space.release_metadata_block(ref - 1, fresh);
        } else {
            --old.refs;
            note_owner_dropped(ref);
            for (u64 entry : *copy.entries) {
                if (!entry)
                    continue;
                if (level == 0)
                    m_space.ref(entry - 1);
                else
                    ++node(entry).refs;
            }
        }
    }
    m_nodes.emplace(block, std::move(copy));
    m_fresh_nodes.push_back(block);
    m_dirty = true;
    return block + 1;
}

ErrorOr<u64*> ThinPool::writable_leaf_entry(VolumeInfo& volume, u64 chunk)
{
    volume.root = TRY(make_writable(volume.root, TREE_DEPTH - 1, Reserve::Node));
    u64 ref = volume.root;
    for (u32 level = TREE_DEPTH - 1; level > 0; --level) {
        u64& slot = (*node(ref).entries)[child_index(chunk, level)];
        slot = TRY(make_writable(slot, level - 1, Reserve::Node));
        ref = slot;
    }
    return &(*node(ref).entries)[child_index(chunk, 0)];
}

void ThinPool::unref(u64 ref, u32 level)
{
    if (level == DATA_LEVEL) {
        m_space.unref(ref - 1);
        return;
    }
    auto& current = node(ref);
    if (--current.refs > 0) {
        note_owner_dropped(ref);
        return;
    }
    for (u64 entry : *current.entries) {
        if (entry)
            unref(entry, level == 0 ? DATA_LEVEL : level - 1);
    }
    bool fresh = current.fresh;
    m_nodes.erase(ref - 1);
    m_space.release_metadata_block(ref - 1, fresh);
}

void ThinPool::note_owner_dropped(u64 ref)
{
    // A fresh node is in no state on disk; one already touched is listed already.
    auto& current = node(ref);
    if (current.fresh || current.touched)
        return;
    current.touched = true;
    m_touched_nodes.push_back(ref - 1);
}

ErrorOr<void> ThinPool::unmap(u64& ref, u32 level, u64 base, u64 first, u64 end, Reserve reserve)
{
    if (!ref)
        return {};
    u64 span = span_of(level);
    if (first <= base && base + span <= end) {
        unref(ref, level);
        ref = 0;
        m_dirty = true;
        return {};
    }
    ref = TRY(make_writable(ref, level, reserve));
    Entries& entries = *node(ref).entries;
    u64 child_span = span / NODE_FANOUT;
    u64 low = first > base ? (first - base) / child_span : 0;
    u64 high = std::min<u64>(NODE_FANOUT, (end - base + child_span - 1) / child_span);
    for (u64 i = low; i < high; ++i) {
        if (!entries[i])
            continue;
        if (level == 0) {
            m_space.unref(entries[i] - 1);
            entries[i] = 0;
            continue;
        }
        TRY(unmap(entries[i], level - 1, base + i * child_span, first, end, reserve));
    }
    if (std::all_of(entries.begin(), entries.end(), [](u64 entry) { return entry == 0; })) {
        unref(ref, level);
        ref = 0;
    }
    m_dirty = true;
    return {};
}

std::optional<u64> ThinPool::next_mapped(u64 ref, u32 level, u64 base, u64 from) const
{
    if (!ref)
        return std::nullopt;
    auto const& entries = *node(ref).entries;
    u64 child_span = span_of(level) / NODE_FANOUT;
    u64 start = from > base ? (from - base) / child_span : 0;
    for (u64 i = start; i < NODE_FANOUT; ++i) {
        if (!entries[i])
            continue;
        u64 child_base = base + i * child_span;
        if (level == 0)
            return child_base;
        if (auto found = next_mapped(entries[i], level - 1, child_base, std::max(from, child_base)))
            return found;
    }
    return std::nullopt;
}

} // namespace kasou::storage
