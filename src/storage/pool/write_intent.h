#pragma once

#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "storage/pool/format.h"

namespace kasou::storage {

// The write-intent bitmap of one mirror segment (IntentBitmapHeader in format.h): which regions of
// the segment may differ between its copies after a crash. A write to a region whose bit is not
// yet durable first sets it and has the bitmap written durably (mark() returns the regions to set,
// the caller writes the block); after a flush that covers every write issued before begin_settle(),
// finish_settle() keeps only the bits of regions written since, so a clean shutdown leaves no bit.
//
// Invariants: every region written since the last settle has its bit in durable(); bits past
// regions() are never set. Thread-safe: one mutex orders marks and settles, and the caller holds
// lock() while it writes the block that mark() or finish_settle() asked for.
class WriteIntentBitmap {
public:
    explicit WriteIntentBitmap(u64 segment_size);

    // The region size a segment of this size uses: MIN_INTENT_REGION, or the power of two that
    // keeps its regions within MAX_INTENT_REGIONS.
    static u64 region_size_for(u64 segment_size);
    u64 region_size() const { return m_region_size; }
    u32 regions() const { return m_regions; }

    // Parses a bitmap block read from a member: nullopt when kasou never wrote one there (another
    // magic: a pool made before bitmaps existed); every region when it is torn
    // (bad checksum), since then any region may have been written; otherwise the regions whose
    // bits are set. Every field is checked against the others and against the member it was read
    // from, with checked arithmetic: an error names the field.
    static ErrorOr<std::optional<std::vector<u32>>> decode(Block const& block, Uuid const& member_uuid, u64 segment_size, std::string_view what);
    // The bitmap as durable() holds it, sealed, as member member_uuid stores it.
    Block encode(Uuid const& member_uuid) const;

    std::unique_lock<std::mutex> lock() { return std::unique_lock(m_mutex); }
    // Notes a write to [offset, offset + length) of the segment; true when new bits were set in
    // durable() and the bitmap must be written before the write goes out. Needs lock().
    bool mark(u64 offset, u64 length);
    // Under the pool's exclusive lock, with no write to the segment in flight: the writes so far
    // are those the coming flush covers.
    void begin_settle();
    // Once that flush is done: clears the bits of regions not written since begin_settle(); true
    // when bits were cleared and the bitmap must be written. Needs lock().
    bool finish_settle();
    std::vector<bool> const& durable() const { return m_durable; }

private:
    std::mutex m_mutex;
    u64 m_segment_size;
    u64 m_region_size;
    u32 m_regions;
    u64 m_sequence { 0 };
    std::vector<bool> m_durable; // bits as the bitmap on disk has them (or is about to)
    std::vector<bool> m_written; // regions written since begin_settle
};

} // namespace kasou::storage
