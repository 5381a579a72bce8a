#include "storage/pool/pool_status.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/try.h"
#include "storage/pool/pool_handle.h"

namespace kasou::storage {

PoolStatus pool_status(ThinPool const& pool)
{
    auto const& layout = pool.layout();
    PoolStatus status { pool.name(), pool.uuid().to_string(), pool.generation(), pool.usage(), CHUNK_SIZE, pool.volumes().size(), {}, {} };
    for (auto const& segment : layout.segments())
        status.segments.push_back({ segment.kind, segment.size, segment.first_member, segment.width, segment.stripe_size });
    for (u32 i = 0; i < layout.members().size(); ++i) {
        auto const& member = *layout.members()[i];
        u32 segment = 0;
        for (u32 s = 0; s < status.segments.size(); ++s) {
            if (i >= status.segments[s].first_member && i < status.segments[s].first_member + status.segments[s].width) {
                segment = s;
                break;
            }
        }
        status.members.push_back({ i, member.disk ? std::optional(member.disk->name()) : std::nullopt, member.uuid.to_string(),
            member.state.load(), member.usable_size, segment });
    }
    return status;
}

nlohmann::json to_json(PoolStatus const& status)
{
    nlohmann::json members = nlohmann::json::array();
    for (auto const& member : status.members)
        members.push_back({ { "index", member.index }, { "disk", member.disk.value_or("") }, { "uuid", member.uuid },
            { "state", member.state == MemberState::Healthy ? "healthy" : member.state == MemberState::Rebuilding ? "rebuilding" : "failed" }, { "size", member.size }, { "segment", member.segment } });
    nlohmann::json segments = nlohmann::json::array();
    for (auto const& segment : status.segments)
        segments.push_back({ { "layout", layout_name(segment.kind) }, { "size", segment.size }, { "members", segment.width },
            { "stripe_size", segment.stripe_size } });
    auto const& usage = status.usage;
    return { { "name", status.name }, { "uuid", status.uuid }, { "generation", status.generation }, { "size", usage.size },
        { "used", usage.data_used }, { "free", usage.free }, { "reserve", usage.reserve },
        { "metadata", { { "used", usage.metadata_used }, { "chunks", usage.metadata_chunks }, { "chunk_size", status.chunk_size } } },
        { "volumes", status.volumes }, { "segments", segments }, { "members", members } };
}

VolumeKind volume_kind(VolumeInfo const& volume)
{
    if (volume.read_only())
        return VolumeKind::Snapshot;
    return volume.origin_id ? VolumeKind::Clone : VolumeKind::Volume;
}

char const* volume_kind_name(VolumeKind kind)
{
    switch (kind) {
    case VolumeKind::Volume:
        return "volume";
    case VolumeKind::Snapshot:
        return "snapshot";
    case VolumeKind::Clone:
        return "clone";
    }
    return "?";
}

ErrorOr<std::vector<VolumeStatus>> volume_statuses(ThinPool& pool)
{
    auto volumes = pool.volumes();
    std::vector<VolumeStatus> statuses;
    for (auto const& volume : volumes) {
        VolumeStatus status { pool.name(), volume.name, volume.size, 0, volume_kind(volume), std::nullopt, volume.created };
        if (volume.size > 0) {
            auto extents = TRY(pool.block_status(volume.id, 0, volume.size).map_error(
                [&](Error const& error) { return error.with_prefix(fmt::format("volume {}", status.path())); }));
            for (auto const& extent : extents)
                status.allocated += extent.allocated ? extent.length : 0;
        }
        for (auto const& other : volumes) {
            if (volume.origin_id && other.id == volume.origin_id)
                status.origin = other.name;
        }
        statuses.push_back(std::move(status));
    }
    return statuses;
}

nlohmann::json to_json(VolumeStatus const& status)
{
    return { { "name", status.path() }, { "size", status.size }, { "allocated", status.allocated }, { "type", volume_kind_name(status.kind) },
        { "origin", status.origin ? nlohmann::json(status.pool + "/" + *status.origin) : nlohmann::json() }, { "created", status.created } };
}

ErrorOr<SnapshotPaths> parse_snapshot_paths(std::string_view source, std::string_view target)
{
    auto from = TRY(parse_volume_path(source));
    auto to = TRY(parse_volume_path(target));
    if (from.first != to.first)
        return make_error(fmt::format("{} and {} are in different pools; snapshots and clones stay in their pool", source, target));
    return SnapshotPaths { from.first, from.second, to.second };
}

} // namespace kasou::storage
