#include "storage/pool/pool_layout.h"

#include <algorithm>
#include <cerrno>
#include <optional>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::storage {

namespace {

// Whether writes go to a member in this state: a healthy one, or one being rebuilt.
bool is_written(MemberState state)
{
    return state == MemberState::Healthy || state == MemberState::Rebuilding;
}

} // namespace

ErrorOr<u64> PoolLayout::plan_segment(SegmentKind kind, std::vector<u64> const& disk_sizes, u64 stripe_size)
{
    if (disk_sizes.empty())
        return make_error("no disks given");
    if (kind == SegmentKind::Linear && disk_sizes.size() != 1)
        return make_error("a linear segment has exactly one disk");
    if (kind == SegmentKind::Mirror && (disk_sizes.size() < MIN_MIRROR_COPIES || disk_sizes.size() > MAX_MIRROR_COPIES))
        return make_error(fmt::format("a mirror has 2 or 3 copies, not {}", disk_sizes.size()));
    if (kind == SegmentKind::Striped && disk_sizes.size() < 2)
        return make_error("striping needs at least 2 disks");
    u64 granule = CHUNK_SIZE;
    if (kind == SegmentKind::Striped) {
        if (stripe_size < MIN_STRIPE_SIZE || stripe_size > MAX_STRIPE_SIZE || !std::has_single_bit(stripe_size))
            return make_error(fmt::format("stripe chunk size {} must be a power of two from 4 KiB to 4 MiB", stripe_size));
        granule = std::max(stripe_size, CHUNK_SIZE);
    }
    u64 smallest = *std::min_element(disk_sizes.begin(), disk_sizes.end());
    if (smallest < MEMBER_HEADER_SIZE + granule)
        return make_error(fmt::format("disk of {} bytes is too small: a member needs at least {} bytes", smallest, MEMBER_HEADER_SIZE + granule));
    return (smallest - MEMBER_HEADER_SIZE) / granule * granule;
}

ErrorOr<void> PoolLayout::check_room_for(SegmentKind kind, size_t disks) const
{
    if (m_members.size() + disks > MAX_MEMBERS)
        return make_error(fmt::format("a pool has at most {} members ({} now)", MAX_MEMBERS, m_members.size()));
    if (m_segments.size() + (kind == SegmentKind::Linear ? disks : 1) > MAX_SEGMENTS)
        return make_error(fmt::format("a pool has at most {} segments ({} now)", MAX_SEGMENTS, m_segments.size()));
    return {};
}

ErrorOr<void> PoolLayout::add_segment(SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<PoolMember>> members)
{
    TRY(check_room_for(kind, members.size()));
    auto add_one = [&](u32 first, u32 width, u64 per_member) {
        PoolSegment segment;
        segment.kind = kind;
        segment.first_member = first;
        segment.width = width;
        segment.stripe_size = kind == SegmentKind::Striped ? stripe_size : 0;
        segment.start = m_size;
        segment.size = kind == SegmentKind::Mirror ? per_member : per_member * width;
        m_segments.push_back(segment);
        m_intents.push_back(kind == SegmentKind::Mirror ? std::make_unique<WriteIntentBitmap>(segment.size) : nullptr);
        m_size += segment.size;
    };
    if (kind == SegmentKind::Linear) {
        for (auto& member : members) {
            add_one(static_cast<u32>(m_members.size()), 1, member->usable_size);
            m_members.push_back(std::move(member));
        }
        return {};
    }
    u64 per_member = members.front()->usable_size;
    for (auto const& member : members) {
        if (member->usable_size != per_member)
            return make_error("members of one segment must use the same size");
    }
    u32 first = static_cast<u32>(m_members.size());
    for (auto& member : members)
        m_members.push_back(std::move(member));
    add_one(first, static_cast<u32>(m_members.size()) - first, per_member);
    return {};
}

ErrorOr<PoolLayout> PoolLayout::from_superblock(Superblock const& superblock, std::vector<std::unique_ptr<MemberDisk>> disks)
{
    TRY(validate_superblock(superblock));
    if (disks.size() != superblock.member_count)
        return make_error(fmt::format("{} disks given for a pool of {} members", disks.size(), superblock.member_count));
    PoolLayout layout;
    for (u32 i = 0; i < superblock.member_count; ++i) {
        auto member = std::make_unique<PoolMember>();
        auto const& entry = superblock.members[i];
        member->uuid = entry.uuid;
        member->usable_size = entry.usable_size;
        member->state = disks[i] ? entry.state : MemberState::Failed;
        if (member->state == MemberState::Rebuilding) {
            member->rebuilt = superblock.rebuilt[i];
            member->checkpoint = superblock.rebuilt[i];
        }
        // No overflow: validate_superblock checked the sum.
        if (disks[i] && disks[i]->size() < MEMBER_HEADER_SIZE + entry.usable_size)
            return make_error(fmt::format("member {} ({}) has {} bytes, but the pool uses {} of it", i, disks[i]->name(), disks[i]->size(),
                MEMBER_HEADER_SIZE + entry.usable_size));
        member->disk = std::move(disks[i]);
        layout.m_members.push_back(std::move(member));
    }
    for (u32 i = 0; i < superblock.segment_count; ++i) {
        auto const& entry = superblock.segments[i];
        PoolSegment segment;
        segment.kind = entry.kind;
        segment.first_member = entry.first_member;
        segment.width = entry.width;
        segment.stripe_size = entry.stripe_size;
        segment.start = layout.m_size;
        u64 per_member = superblock.members[entry.first_member].usable_size;
        segment.size = entry.kind == SegmentKind::Striped ? per_member * entry.width : per_member;
        u32 healthy = 0;
        for (u32 m = entry.first_member; m < entry.first_member + entry.width; ++m) {
            if (layout.m_members[m]->state == MemberState::Healthy)
                ++healthy;
        }
        bool needs_all = entry.kind != SegmentKind::Mirror;
        if ((needs_all && healthy != entry.width) || healthy == 0) {
            for (u32 m = entry.first_member; m < entry.first_member + entry.width; ++m) {
                if (layout.m_members[m]->state != MemberState::Healthy)
                    return make_error(ErrorKind::Io, fmt::format("member {} ({}) of {} segment {} is missing or failed and has no copy: the pool cannot be opened",
                        m, layout.m_members[m]->uuid.to_string(), layout_name(entry.kind), i));
            }
        }
        layout.m_segments.push_back(segment);
        layout.m_intents.push_back(entry.kind == SegmentKind::Mirror ? std::make_unique<WriteIntentBitmap>(segment.size) : nullptr);
        layout.m_size += segment.size;
    }
    return layout;
}

void PoolLayout::describe(Superblock& superblock) const
{
    superblock.member_count = static_cast<u32>(m_members.size());
    superblock.segment_count = static_cast<u32>(m_segments.size());
    for (size_t i = 0; i < m_members.size(); ++i) {
        auto& entry = superblock.members[i];
        entry = {};
        entry.uuid = m_members[i]->uuid;
        entry.usable_size = m_members[i]->usable_size;
        entry.state = m_members[i]->state;
        superblock.rebuilt[i] = entry.state == MemberState::Rebuilding ? m_members[i]->checkpoint.load() : 0;
    }
    for (size_t i = 0; i < m_segments.size(); ++i) {
        auto& entry = superblock.segments[i];
        entry = {};
        entry.kind = m_segments[i].kind;
        entry.first_member = m_segments[i].first_member;
        entry.width = m_segments[i].width;
        entry.stripe_size = m_segments[i].stripe_size;
    }
}

ErrorOr<void> PoolLayout::for_each_piece(u64 offset, u64 length, std::function<ErrorOr<void>(Piece const&)> const& fn) const
{
    if (offset > m_size || length > m_size - offset)
        return make_error(fmt::format("pool access of {} bytes at {} is past the end of the pool ({} bytes)", length, offset, m_size));
    u64 done = 0;
    auto segment = std::upper_bound(m_segments.begin(), m_segments.end(), offset, [](u64 value, PoolSegment const& s) { return value < s.start; });
    --segment;
    while (done < length) {
        u64 position = offset + done;
        while (position >= segment->start + segment->size)
            ++segment;
        u64 in_segment = position - segment->start;
        u64 piece_length = std::min(length - done, segment->start + segment->size - position);
        Piece piece { segment->first_member, MEMBER_HEADER_SIZE + in_segment, done, piece_length, &*segment };
        if (segment->kind == SegmentKind::Striped) {
            u64 stripe = in_segment / segment->stripe_size;
            u64 within = in_segment % segment->stripe_size;
            piece.member = segment->first_member + static_cast<u32>(stripe % segment->width);
            piece.member_offset = MEMBER_HEADER_SIZE + stripe / segment->width * segment->stripe_size + within;
            piece.length = std::min(piece_length, segment->stripe_size - within);
        }
        TRY(fn(piece));
        done += piece.length;
    }
    return {};
}

bool PoolLayout::is_mirrored(u32 index) const
{
    return std::any_of(m_segments.begin(), m_segments.end(), [&](PoolSegment const& s) {
        return s.kind == SegmentKind::Mirror && index >= s.first_member && index < s.first_member + s.width;
    });
}

void PoolLayout::fail_member(u32 index, Error const& error)
{
    auto& member = *m_members[index];
    if (is_written(member.state.exchange(MemberState::Failed))) {
        spdlog::error("member {} ({}) failed, the pool runs degraded: {}", index, member.disk ? member.disk->name() : "missing", error.to_string());
        m_member_failed->store(true);
    }
}

ErrorOr<void> PoolLayout::mirror_read(Piece const& piece, std::span<u8> buffer)
{
    auto const& segment = *piece.segment;
    u64 turn = m_read_turn->fetch_add(1);
    std::optional<Error> last_error;
    for (u32 attempt = 0; attempt < segment.width; ++attempt) {
        u32 index = segment.first_member + static_cast<u32>((turn + attempt) % segment.width);
        auto& member = *m_members[index];
        if (member.state != MemberState::Healthy)
            continue;
        auto result = member.disk->read(piece.member_offset, buffer);
        if (result)
            return {};
        fail_member(index, result.error());
        last_error = result.error();
    }
    if (last_error)
        return tl::unexpected(*last_error);
    return make_errno_error(EIO, "read: no healthy mirror copy left");
}

ErrorOr<void> PoolLayout::mirror_change(Piece const& piece, std::function<ErrorOr<void>(MemberDisk&)> const& change, char const* what)
{
    auto const& segment = *piece.segment;
    u32 changed = 0;
    std::optional<Error> last_error;
    // A copy being rebuilt is written too; the copier holds the lock exclusively per range.
    std::shared_lock rebuild(*m_rebuild_lock);
    for (u32 index = segment.first_member; index < segment.first_member + segment.width; ++index) {
        auto& member = *m_members[index];
        MemberState state = member.state;
        if (!is_written(state))
            continue;
        auto result = change(*member.disk);
        if (result) {
            changed += state == MemberState::Healthy;
            continue;
        }
        fail_member(index, result.error());
        last_error = result.error();
    }
    if (changed > 0)
        return {};
    if (last_error)
        return tl::unexpected(*last_error);
    return make_errno_error(EIO, fmt::format("{}: no healthy mirror copy left", what));
}

ErrorOr<void> PoolLayout::read(u64 offset, std::span<u8> buffer)
{
    return for_each_piece(offset, buffer.size(), [&](Piece const& piece) -> ErrorOr<void> {
        auto part = buffer.subspan(piece.buffer_offset, piece.length);
        if (piece.segment->kind == SegmentKind::Mirror)
            return mirror_read(piece, part);
        return m_members[piece.member]->disk->read(piece.member_offset, part);
    });
}

ErrorOr<void> PoolLayout::change_each_piece(u64 offset, u64 length, char const* what,
    std::function<ErrorOr<void>(MemberDisk&, Piece const&)> const& change)
{
    return for_each_piece(offset, length, [&](Piece const& piece) -> ErrorOr<void> {
        auto change_piece = [&](MemberDisk& disk) { return change(disk, piece); };
        if (piece.segment->kind == SegmentKind::Mirror) {
            // The region's intent is durable before the write goes out.
            size_t index = static_cast<size_t>(piece.segment - m_segments.data());
            auto& intents = *m_intents[index];
            auto lock = intents.lock();
            if (intents.mark(piece.member_offset - MEMBER_HEADER_SIZE, piece.length))
                TRY(write_intent_block(index));
            lock.unlock();
            return mirror_change(piece, change_piece, what);
        }
        return change_piece(*m_members[piece.member]->disk);
    });
}

ErrorOr<void> PoolLayout::write(u64 offset, std::span<u8 const> data)
{
    return change_each_piece(offset, data.size(), "write", [&](MemberDisk& disk, Piece const& piece) {
        return disk.write(piece.member_offset, data.subspan(piece.buffer_offset, piece.length));
    });
}

ErrorOr<void> PoolLayout::write_durable(u64 offset, std::span<u8 const> data)
{
    return change_each_piece(offset, data.size(), "write", [&](MemberDisk& disk, Piece const& piece) {
        return disk.write_durable(piece.member_offset, data.subspan(piece.buffer_offset, piece.length));
    });
}

ErrorOr<void> PoolLayout::write_zeroes(u64 offset, u64 length)
{
    return change_each_piece(offset, length, "write-zeroes", [&](MemberDisk& disk, Piece const& piece) {
        return disk.write_zeroes(piece.member_offset, piece.length);
    });
}

ErrorOr<void> PoolLayout::read_copy(u64 offset, std::span<u8> buffer, u32 copy)
{
    return for_each_piece(offset, buffer.size(), [&](Piece const& piece) -> ErrorOr<void> {
        u32 member = member_of_copy(piece, copy);
        if (m_members[member]->state != MemberState::Healthy)
            return {};
        return m_members[member]->disk->read(piece.member_offset, buffer.subspan(piece.buffer_offset, piece.length));
    });
}

u32 PoolLayout::member_of_copy(Piece const& piece, u32 copy) const
{
    return piece.segment->kind == SegmentKind::Mirror ? piece.segment->first_member + copy : piece.member;
}

u32 PoolLayout::copies_at(u64 offset) const
{
    for (auto const& segment : m_segments) {
        if (offset >= segment.start && offset < segment.start + segment.size)
            return segment.kind == SegmentKind::Mirror ? segment.width : 1;
    }
    return 1;
}

bool PoolLayout::is_durable_hole(u64 offset, u64 length) const
{
    bool hole = true;
    auto visited = for_each_piece(offset, length, [&](Piece const& piece) -> ErrorOr<void> {
        u32 copies = piece.segment->kind == SegmentKind::Mirror ? piece.segment->width : 1;
        for (u32 copy = 0; copy < copies && hole; ++copy) {
            auto const& member = *m_members[member_of_copy(piece, copy)];
            if (member.state == MemberState::Healthy)
                hole = member.disk->is_durable_hole(piece.member_offset, piece.length);
        }
        return {};
    });
    return visited && hole;
}

ErrorOr<void> PoolLayout::flush()
{
    for (u32 index = 0; index < m_members.size(); ++index) {
        auto& member = *m_members[index];
        if (!is_written(member.state))
            continue;
        auto result = member.disk->flush();
        if (result)
            continue;
        if (!is_mirrored(index))
            return tl::unexpected(result.error().with_prefix(fmt::format("flush of member {}", member.disk->name())));
        fail_member(index, result.error());
    }
    for (auto const& segment : m_segments) {
        bool any = false;
        for (u32 m = segment.first_member; m < segment.first_member + segment.width; ++m)
            any = any || m_members[m]->state == MemberState::Healthy;
        if (!any)
            return make_errno_error(EIO, "flush: a segment has no healthy member left");
    }
    return {};
}

ErrorOr<void> PoolLayout::write_superblock(Block const& block, u32 slot)
{
    u32 written = 0;
    for (u32 index = 0; index < m_members.size(); ++index) {
        auto& member = *m_members[index];
        if (!is_written(member.state))
            continue;
        auto result = member.disk->write_durable(SUPERBLOCK_OFFSET + slot * BLOCK_SIZE, block);
        if (result) {
            ++written;
            continue;
        }
        // Only a mirror copy may fail and leave the pool going; any other member is needed.
        if (!is_mirrored(index))
            return tl::unexpected(result.error().with_prefix(fmt::format("superblock write to {}", member.disk->name())));
        fail_member(index, result.error());
    }
    if (written == 0)
        return make_errno_error(EIO, "superblock write: no member could be written");
    return {};
}

void PoolLayout::replace_member_disk(u32 index, std::unique_ptr<MemberDisk> disk, Uuid uuid)
{
    auto& member = *m_members[index];
    member.disk = std::move(disk);
    member.uuid = uuid;
    member.state = MemberState::Failed; // written from start_rebuild on, healthy once rebuilt
}

PoolSegment const& PoolLayout::segment_of(u32 index) const
{
    return *std::find_if(m_segments.begin(), m_segments.end(), [&](PoolSegment const& s) {
        return index >= s.first_member && index < s.first_member + s.width;
    });
}

ErrorOr<void> PoolLayout::start_rebuild(u32 index)
{
    if (index >= m_members.size() || segment_of(index).kind != SegmentKind::Mirror)
        return make_error(fmt::format("member {} is not part of a mirror: nothing can be copied onto it", index));
    auto& target = *m_members[index];
    if (!target.disk)
        return make_error(fmt::format("member {} has no disk to resynchronize", index));
    // Its bitmap block, clean: the member takes part in the segment's intents from now on.
    size_t segment = static_cast<size_t>(&segment_of(index) - m_segments.data());
    auto lock = m_intents[segment]->lock();
    TRY(target.disk->write_durable(INTENT_BITMAP_OFFSET, m_intents[segment]->encode(target.uuid)));
    target.rebuilt = 0;
    target.checkpoint = 0;
    target.state = MemberState::Rebuilding;
    m_member_failed->store(true);
    return {};
}

ErrorOr<bool> PoolLayout::rebuild_step(u32 index, u64 length)
{
    auto const& segment = segment_of(index);
    auto& target = *m_members[index];
    u64 done = target.rebuilt;
    std::vector<u8> buffer(std::min(length, segment.size - done));
    std::unique_lock exclusive(*m_rebuild_lock);
    if (target.state != MemberState::Rebuilding)
        return make_errno_error(EIO, fmt::format("member {} failed while it was being rebuilt", index));
    Piece piece { index, MEMBER_HEADER_SIZE + done, 0, buffer.size(), &segment };
    TRY(mirror_read(piece, buffer));
    if (auto written = target.disk->write(piece.member_offset, buffer); !written) {
        fail_member(index, written.error());
        return tl::unexpected(written.error());
    }
    target.rebuilt = done + buffer.size();
    return target.rebuilt == segment.size;
}

ErrorOr<void> PoolLayout::checkpoint_rebuild(u32 index)
{
    auto& target = *m_members[index];
    u64 rebuilt = target.rebuilt;
    if (auto flushed = target.disk->flush(); !flushed) {
        fail_member(index, flushed.error());
        return flushed;
    }
    target.checkpoint = rebuilt;
    m_member_failed->store(true);
    return {};
}

ErrorOr<void> PoolLayout::finish_rebuild(u32 index)
{
    TRY(checkpoint_rebuild(index));
    auto& target = *m_members[index];
    if (target.rebuilt != segment_of(index).size)
        return make_error(ErrorKind::Internal, fmt::format("member {} is not rebuilt to its end", index));
    target.state = MemberState::Healthy;
    target.rebuilt = 0;
    target.checkpoint = 0;
    return {};
}

std::optional<u32> PoolLayout::rebuilding_member() const
{
    for (u32 index = 0; index < m_members.size(); ++index) {
        if (m_members[index]->state == MemberState::Rebuilding && m_members[index]->disk)
            return index;
    }
    return std::nullopt;
}

ErrorOr<void> PoolLayout::write_intent_block(size_t segment)
{
    auto const& range = m_segments[segment];
    u32 written = 0;
    std::optional<Error> last_error;
    for (u32 index = range.first_member; index < range.first_member + range.width; ++index) {
        auto& member = *m_members[index];
        if (!is_written(member.state))
            continue;
        auto result = member.disk->write_durable(INTENT_BITMAP_OFFSET, m_intents[segment]->encode(member.uuid));
        if (result) {
            written += member.state == MemberState::Healthy;
            continue;
        }
        fail_member(index, result.error());
        last_error = result.error();
    }
    if (written > 0)
        return {};
    if (last_error)
        return tl::unexpected(last_error->with_prefix("write-intent bitmap"));
    return make_errno_error(EIO, "write-intent bitmap: no healthy mirror copy left");
}

ErrorOr<void> PoolLayout::write_intents()
{
    for (size_t segment = 0; segment < m_segments.size(); ++segment) {
        if (!m_intents[segment])
            continue;
        auto lock = m_intents[segment]->lock();
        TRY(write_intent_block(segment));
    }
    return {};
}

void PoolLayout::begin_settle_intents()
{
    for (auto& intents : m_intents) {
        if (intents)
            intents->begin_settle();
    }
}

ErrorOr<void> PoolLayout::finish_settle_intents()
{
    for (size_t segment = 0; segment < m_segments.size(); ++segment) {
        if (!m_intents[segment])
            continue;
        auto lock = m_intents[segment]->lock();
        if (m_intents[segment]->finish_settle())
            TRY(write_intent_block(segment));
    }
    return {};
}

ErrorOr<void> PoolLayout::copy_between_copies(PoolSegment const& segment, u64 offset, u64 length)
{
    std::vector<u8> buffer(std::min<u64>(length, 1 * MiB));
    for (u64 done = 0; done < length;) {
        u64 part = std::min<u64>(buffer.size(), length - done);
        auto span = std::span(buffer).first(part);
        u64 member_offset = MEMBER_HEADER_SIZE + offset + done;
        u32 source = segment.first_member;
        while (source < segment.first_member + segment.width && m_members[source]->state != MemberState::Healthy)
            ++source;
        if (source == segment.first_member + segment.width)
            return make_errno_error(EIO, "resync: no healthy mirror copy left");
        if (auto read = m_members[source]->disk->read(member_offset, span); !read) {
            fail_member(source, read.error());
            continue; // the next healthy copy is the source
        }
        for (u32 index = segment.first_member; index < segment.first_member + segment.width; ++index) {
            auto& member = *m_members[index];
            if (index == source || !is_written(member.state))
                continue;
            // A copy being rebuilt gets only what it already holds; the rebuild copies the rest.
            u64 limit = member.state == MemberState::Rebuilding ? member.rebuilt.load() : segment.size;
            if (offset + done >= limit)
                continue;
            auto written = member.disk->write(member_offset, span.first(std::min(part, limit - offset - done)));
            if (!written)
                fail_member(index, written.error());
        }
        done += part;
    }
    return {};
}

ErrorOr<u64> PoolLayout::resync_intents()
{
    u64 copied = 0;
    for (size_t segment = 0; segment < m_segments.size(); ++segment) {
        if (!m_intents[segment])
            continue;
        auto const& range = m_segments[segment];
        auto& intents = *m_intents[segment];
        std::vector<bool> dirty(intents.regions(), false);
        for (u32 index = range.first_member; index < range.first_member + range.width; ++index) {
            auto& member = *m_members[index];
            if (!is_written(member.state))
                continue;
            Block block {};
            TRY(member.disk->read(INTENT_BITMAP_OFFSET, block));
            auto regions = TRY(WriteIntentBitmap::decode(block, member.uuid, range.size,
                fmt::format("write-intent bitmap of member {} ({})", index, member.disk->name())));
            for (u32 region : regions.value_or(std::vector<u32> {}))
                dirty[region] = true;
        }
        for (u32 region = 0; region < dirty.size(); ++region) {
            if (!dirty[region])
                continue;
            u64 offset = region * intents.region_size();
            TRY(copy_between_copies(range, offset, std::min(intents.region_size(), range.size - offset)));
            ++copied;
        }
    }
    if (copied > 0)
        TRY(flush());
    m_resynced_regions = copied;
    // The copies agree again: every bitmap cleared, on disk too.
    begin_settle_intents();
    for (auto& intents : m_intents) {
        if (intents) {
            auto lock = intents->lock();
            intents->finish_settle();
        }
    }
    TRY(write_intents());
    return copied;
}

} // namespace kasou::storage
