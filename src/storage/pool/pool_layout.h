#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "storage/pool/format.h"
#include "storage/pool/member_disk.h"
#include "storage/pool/write_intent.h"

namespace kasou::storage {

// A member disk as the layout holds it. disk is null when the disk could not be found; such a
// member is Failed. The state is atomic because I/O paths running in parallel may fail it.
// A Rebuilding member holds copies of the first `rebuilt` bytes of its segment, of which the first
// `checkpoint` are durable on it (what the superblock records).
struct PoolMember {
    std::unique_ptr<MemberDisk> disk;
    Uuid uuid;
    u64 usable_size { 0 };
    std::atomic<MemberState> state { MemberState::Healthy };
    std::atomic<u64> rebuilt { 0 };
    std::atomic<u64> checkpoint { 0 };
};

// One run of the logical address space laid out one way over some members.
struct PoolSegment {
    SegmentKind kind { SegmentKind::Linear };
    u32 first_member { 0 };
    u32 width { 1 };
    u64 stripe_size { 0 };
    u64 start { 0 }; // logical offset
    u64 size { 0 };
};

// Maps the pool's logical address space onto its member disks: a list of segments (linear,
// striped or mirrored), concatenated. Mirrored segments survive failed members: a write goes to
// every healthy copy (and to a copy being rebuilt), a read to one of the healthy ones in turn, and
// an I/O error fails that member (noted in members_changed()) rather than the request while
// another copy remains. Growing appends segments.
//
// Each mirror segment keeps a write-intent bitmap (WriteIntentBitmap) on its members: a write
// first makes its region's bit durable, a settle after a flush clears the bits, and open copies
// only the regions whose bits are set (resync_intents). A copy is rebuilt online in ranges
// (rebuild_step): each range is copied under the rebuild lock held exclusively, while writes to
// the segment take it shared, so no write lands between the read of a range and its copy.
//
// Thread-safe for I/O; add_segment, replace_member_disk, start_rebuild and finish_rebuild need the
// caller to exclude I/O. Lock order: the caller's pool lock, a bitmap's mutex, the rebuild lock.
class PoolLayout {
public:
    PoolLayout() = default;
    PoolLayout(PoolLayout&&) = default;
    PoolLayout& operator=(PoolLayout&&) = default;

    // Bytes of each member a new segment of this kind would use (rounded to CHUNK_SIZE and the
    // stripe size); an error explains why the disks do not fit the layout.
    static ErrorOr<u64> plan_segment(SegmentKind kind, std::vector<u64> const& disk_sizes, u64 stripe_size);

    // Appends a segment over new members (their disks already labelled).
    // Whether a segment of `disks` disks still fits the member and segment tables.
    ErrorOr<void> check_room_for(SegmentKind kind, size_t disks) const;
    ErrorOr<void> add_segment(SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<PoolMember>> members);
    // Rebuilds the layout from a superblock and the disks found for its members (in member-table
    // order, null for a missing disk). Fails if data would be lost: a missing non-mirrored member.
    static ErrorOr<PoolLayout> from_superblock(Superblock const& superblock, std::vector<std::unique_ptr<MemberDisk>> disks);
    // Writes the member and segment tables into superblock.
    void describe(Superblock& superblock) const;

    u64 size() const { return m_size; }
    std::vector<std::unique_ptr<PoolMember>> const& members() const { return m_members; }
    std::vector<PoolSegment> const& segments() const { return m_segments; }
    // True once any member failed, or a rebuild moved on, since the last clear (the superblock
    // must record it).
    bool take_members_changed() { return m_member_failed->exchange(false); }
    bool members_changed() const { return m_member_failed->load(); }

    ErrorOr<void> read(u64 offset, std::span<u8> buffer);
    ErrorOr<void> write(u64 offset, std::span<u8 const> data);
    // Makes [offset, offset + length) read as zeroes on every copy (MemberDisk::write_zeroes).
    ErrorOr<void> write_zeroes(u64 offset, u64 length);
    ErrorOr<void> flush();
    // write() with MemberDisk::write_durable on every copy: durable when it returns.
    ErrorOr<void> write_durable(u64 offset, std::span<u8 const> data);
    // MemberDisk::is_durable_hole for every piece of the range on every healthy copy.
    bool is_durable_hole(u64 offset, u64 length) const;
    // Reads [offset, offset + size) from copy `copy` of a mirrored range (0 for other layouts).
    ErrorOr<void> read_copy(u64 offset, std::span<u8> buffer, u32 copy);
    // How many copies hold [offset, ...): the mirror width, or 1.
    u32 copies_at(u64 offset) const;

    // Writes block durably (MemberDisk::write_durable) to slot `slot` of every healthy member's
    // superblock area.
    ErrorOr<void> write_superblock(Block const& block, u32 slot);

    // Puts disk in place of member index (a Failed one); it is then rebuilt from the start.
    void replace_member_disk(u32 index, std::unique_ptr<MemberDisk> disk, Uuid uuid);
    // Online rebuild of a failed mirror copy whose disk is present: start_rebuild makes it
    // Rebuilding from byte 0 (writes reach it from then on); rebuild_step copies the next `length`
    // bytes of its segment from a healthy copy (true once all are copied); checkpoint_rebuild
    // flushes it and records how far it is durable; finish_rebuild makes it Healthy.
    ErrorOr<void> start_rebuild(u32 index);
    ErrorOr<bool> rebuild_step(u32 index, u64 length);
    ErrorOr<void> checkpoint_rebuild(u32 index);
    ErrorOr<void> finish_rebuild(u32 index);
    // The first member being rebuilt, if any.
    std::optional<u32> rebuilding_member() const;

    // Write-intent bitmaps. write_intents writes every mirror segment's bitmap to its members
    // (new members: a clean one). begin_settle_intents is called under the caller's exclusive
    // lock with no write in flight; finish_settle_intents once a flush that followed it is done.
    ErrorOr<void> write_intents();
    void begin_settle_intents();
    ErrorOr<void> finish_settle_intents();
    // At open: copies each region a bitmap marks from a healthy copy onto the others, then
    // clears the bitmaps. Returns the number of regions copied.
    ErrorOr<u64> resync_intents();
    // What the last resync_intents() copied.
    u64 resynced_regions() const { return m_resynced_regions; }

private:
    struct Piece {
        u32 member;
        u64 member_offset;
        u64 buffer_offset;
        u64 length;
        PoolSegment const* segment;
    };
    ErrorOr<void> for_each_piece(u64 offset, u64 length, std::function<ErrorOr<void>(Piece const&)> const& fn) const;
    ErrorOr<void> mirror_read(Piece const& piece, std::span<u8> buffer);
    // Applies a change to every healthy copy of a mirrored piece; fails only when no copy took it.
    ErrorOr<void> mirror_change(Piece const& piece, std::function<ErrorOr<void>(MemberDisk&)> const& change, char const* what);
    // The member that holds copy `copy` of a piece (0 for a piece that is not mirrored).
    u32 member_of_copy(Piece const& piece, u32 copy) const;
    // change(disk, piece) for every piece of the range: on every healthy copy of a mirrored one.
    ErrorOr<void> change_each_piece(u64 offset, u64 length, char const* what, std::function<ErrorOr<void>(MemberDisk&, Piece const&)> const& change);
    void fail_member(u32 index, Error const& error);
    bool is_mirrored(u32 index) const;
    PoolSegment const& segment_of(u32 index) const;
    // Writes segment s's bitmap durably to its writable members; needs its lock().
    ErrorOr<void> write_intent_block(size_t segment);
    // Copies [offset, offset + length) of a mirror segment from a healthy copy onto the members
    // being written (healthy and rebuilding up to limit of each).
    ErrorOr<void> copy_between_copies(PoolSegment const& segment, u64 offset, u64 length);

    std::vector<std::unique_ptr<PoolMember>> m_members;
    std::vector<PoolSegment> m_segments;
    u64 m_size { 0 };
    std::unique_ptr<std::atomic<u64>> m_read_turn { std::make_unique<std::atomic<u64>>(0) };
    std::unique_ptr<std::atomic<bool>> m_member_failed { std::make_unique<std::atomic<bool>>(false) };
    std::vector<std::unique_ptr<WriteIntentBitmap>> m_intents; // per segment; null unless a mirror
    std::unique_ptr<std::shared_mutex> m_rebuild_lock { std::make_unique<std::shared_mutex>() };
    u64 m_resynced_regions { 0 };
};

} // namespace kasou::storage
