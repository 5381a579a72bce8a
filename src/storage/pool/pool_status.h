#pragma once

// A pool and its volumes as data: what `kasou pool status` and `kasou vol ls` print, and what an
// API serves, computed in one place. The CLI only formats these; to_json gives the objects the
// --json options print (sizes in bytes).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/error.h"
#include "storage/pool/format.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {

// One segment of the pool's logical space: its layout, size and members
// [first_member, first_member + width).
struct SegmentStatus {
    SegmentKind kind { SegmentKind::Linear };
    u64 size { 0 };
    u32 first_member { 0 };
    u32 width { 1 };
    u64 stripe_size { 0 }; // striped segments only
};

// One member disk as the pool's member table has it.
struct MemberStatus {
    u32 index { 0 };
    std::optional<std::string> disk; // nullopt: the member's disk is missing
    std::string uuid;
    MemberState state { MemberState::Healthy };
    u64 size { 0 };    // usable bytes
    u32 segment { 0 }; // index into PoolStatus::segments
};

// A snapshot of one open pool's identity, space and members; members are in member-table order.
struct PoolStatus {
    std::string name;
    std::string uuid;
    u64 generation { 0 };
    PoolUsage usage;
    u64 chunk_size { CHUNK_SIZE };
    u64 volumes { 0 }; // volumes and snapshots, not counting those being removed
    std::vector<SegmentStatus> segments;
    std::vector<MemberStatus> members;
};

PoolStatus pool_status(ThinPool const& pool);
nlohmann::json to_json(PoolStatus const& status);

// What a volume is, decided from its flags and origin: a snapshot is read-only; a writable
// volume with an origin is a clone; anything else a plain volume.
enum class VolumeKind { Volume, Snapshot, Clone };
VolumeKind volume_kind(VolumeInfo const& volume);
char const* volume_kind_name(VolumeKind kind);

// One volume or snapshot as `vol ls` lists it.
struct VolumeStatus {
    std::string pool;
    std::string name;
    u64 size { 0 };
    u64 allocated { 0 }; // bytes in chunks the volume maps (shared ones included)
    VolumeKind kind { VolumeKind::Volume };
    std::optional<std::string> origin; // the origin's name in the same pool, while it exists
    u64 created { 0 };                 // seconds since the epoch

    std::string path() const { return pool + "/" + name; }
};

// Every volume and snapshot of the pool, sorted by name.
ErrorOr<std::vector<VolumeStatus>> volume_statuses(ThinPool& pool);
nlohmann::json to_json(VolumeStatus const& status);

// `vol snapshot SOURCE TARGET` and `vol clone SOURCE TARGET` name two volumes of one pool: returns
// {pool, source volume, target volume}, or an error naming both paths when the pools differ.
// The pool and the two volume names of a snapshot or clone request.
struct SnapshotPaths {
    std::string pool;
    std::string source;
    std::string target;
};
ErrorOr<SnapshotPaths> parse_snapshot_paths(std::string_view source, std::string_view target);

} // namespace kasou::storage
