#include "storage/pool/write_intent.h"

#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "base/checked.h"
#include "base/try.h"

namespace kasou::storage {

WriteIntentBitmap::WriteIntentBitmap(u64 segment_size)
    : m_segment_size(segment_size)
    , m_region_size(region_size_for(segment_size))
    , m_regions(static_cast<u32>((segment_size + m_region_size - 1) / m_region_size))
    , m_durable(m_regions, false)
    , m_written(m_regions, false)
{
}

u64 WriteIntentBitmap::region_size_for(u64 segment_size)
{
    u64 needed = segment_size / MAX_INTENT_REGIONS + (segment_size % MAX_INTENT_REGIONS != 0);
    return std::max(MIN_INTENT_REGION, std::bit_ceil(needed));
}

namespace {

tl::unexpected<Error> bitmap_error(std::string_view what, std::string text)
{
    return make_error(ErrorKind::Corrupt, fmt::format("{}: {}", what, text));
}

} // namespace

ErrorOr<std::optional<std::vector<u32>>> WriteIntentBitmap::decode(Block const& block, Uuid const& member_uuid, u64 segment_size, std::string_view what)
{
    auto const& header = view_as<IntentBitmapHeader>(block);
    // Never written by kasou: a pool made before bitmaps existed, over a disk that held anything.
    if (header.header.magic != INTENT_BITMAP_MAGIC)
        return std::optional<std::vector<u32>> {};
    u64 expected_region = region_size_for(segment_size);
    u64 expected_regions = segment_size / expected_region + (segment_size % expected_region != 0);
    if (auto verified = verify_block(block, INTENT_BITMAP_MAGIC, what); !verified) {
        // A torn write: nothing tells which regions were being written, so all may have been.
        if (verified.error().kind() != ErrorKind::Corrupt)
            return tl::unexpected(verified.error());
        std::vector<u32> all(expected_regions);
        for (u32 region = 0; region < all.size(); ++region)
            all[region] = region;
        return std::optional { std::move(all) };
    }
    if (header.member_uuid != member_uuid)
        return bitmap_error(what, fmt::format("belongs to member {}, not to this member {}", header.member_uuid.to_string(), member_uuid.to_string()));
    if (header.segment_size != segment_size)
        return bitmap_error(what, fmt::format("covers {} bytes, but the member's segment has {}", header.segment_size, segment_size));
    if (header.region_size < MIN_INTENT_REGION || !std::has_single_bit(header.region_size))
        return bitmap_error(what, fmt::format("region size {} is not a power of two of at least {}", header.region_size, MIN_INTENT_REGION));
    if (header.regions == 0 || header.regions > MAX_INTENT_REGIONS)
        return bitmap_error(what, fmt::format("region count {} is not from 1 to {}", header.regions, MAX_INTENT_REGIONS));
    auto covered = checked_mul<u64>(header.regions, header.region_size);
    if (!covered || *covered < segment_size || *covered - segment_size >= header.region_size)
        return bitmap_error(what, fmt::format("{} regions of {} bytes do not cover the segment's {} bytes exactly", header.regions, header.region_size, segment_size));
    if (header.region_size != expected_region)
        return bitmap_error(what, fmt::format("region size {} is not the {} this segment uses", header.region_size, expected_region));
    u8 const* bits = block.data() + sizeof(IntentBitmapHeader);
    std::vector<u32> dirty;
    for (u64 region = 0; region < MAX_INTENT_REGIONS; ++region) {
        if (!(bits[region / 8] & (1u << (region % 8))))
            continue;
        if (region >= header.regions)
            return bitmap_error(what, fmt::format("bit {} is set, past its {} regions", region, header.regions));
        dirty.push_back(static_cast<u32>(region));
    }
    return std::optional { std::move(dirty) };
}

Block WriteIntentBitmap::encode(Uuid const& member_uuid) const
{
    Block block {};
    auto& header = view_as<IntentBitmapHeader>(block);
    header.member_uuid = member_uuid;
    header.sequence = m_sequence;
    header.segment_size = m_segment_size;
    header.region_size = m_region_size;
    header.regions = m_regions;
    u8* bits = block.data() + sizeof(IntentBitmapHeader);
    for (u32 region = 0; region < m_regions; ++region) {
        if (m_durable[region])
            bits[region / 8] |= static_cast<u8>(1u << (region % 8));
    }
    seal_block(block, INTENT_BITMAP_MAGIC);
    return block;
}

bool WriteIntentBitmap::mark(u64 offset, u64 length)
{
    bool changed = false;
    if (length == 0)
        return false;
    for (u64 region = offset / m_region_size; region <= (offset + length - 1) / m_region_size && region < m_regions; ++region) {
        m_written[region] = true;
        if (!m_durable[region]) {
            m_durable[region] = true;
            changed = true;
        }
    }
    if (changed)
        ++m_sequence;
    return changed;
}

void WriteIntentBitmap::begin_settle()
{
    std::lock_guard guard(m_mutex);
    m_written.assign(m_regions, false);
}

bool WriteIntentBitmap::finish_settle()
{
    bool changed = m_durable != m_written;
    if (changed) {
        m_durable = m_written;
        ++m_sequence;
    }
    return changed;
}

} // namespace kasou::storage
