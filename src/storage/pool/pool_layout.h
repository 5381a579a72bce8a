#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "storage/pool/format.h"
#include "storage/pool/member_disk.h"

namespace kasou::storage {

// A member disk as the layout holds it. disk is null when the disk could not be found; such a
// member is Failed. The state is atomic because I/O paths running in parallel may fail it.
struct PoolMember {
    std::unique_ptr<MemberDisk> disk;
    Uuid uuid;
    u64 usable_size { 0 };
    std::atomic<MemberState> state { MemberState::Healthy };
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
// every healthy copy, a read to one of them in turn, and an I/O error fails that member (noted in
// member_failed()) rather than the request while another copy remains. Growing appends segments.
// Thread-safe for I/O; add_segment and replace_member need the caller to exclude I/O.
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
    // True once any member failed since the last clear (the superblock must record it).
    bool take_member_failed() { return m_member_failed->exchange(false); }
    bool member_failed() const { return m_member_failed->load(); }

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

    // Puts disk in place of member index (a Failed one) and copies its segment's data onto it from
    // a healthy copy; progress(done, total) is called between pieces.
    ErrorOr<void> resync_member(u32 index, std::function<void(u64, u64)> const& progress);
    void replace_member_disk(u32 index, std::unique_ptr<MemberDisk> disk, Uuid uuid);

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

    std::vector<std::unique_ptr<PoolMember>> m_members;
    std::vector<PoolSegment> m_segments;
    u64 m_size { 0 };
    std::unique_ptr<std::atomic<u64>> m_read_turn { std::make_unique<std::atomic<u64>>(0) };
    std::unique_ptr<std::atomic<bool>> m_member_failed { std::make_unique<std::atomic<bool>>(false) };
};

} // namespace kasou::storage
