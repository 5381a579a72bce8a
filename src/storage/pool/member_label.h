#pragma once

#include <optional>
#include <string>

#include "storage/pool/format.h"
#include "storage/pool/member_disk.h"

namespace kasou::storage {

// Writes a member's label and invalidates both superblock slots (so no earlier pool on the disk
// can be mistaken for this one), then flushes.
ErrorOr<void> write_member_label(MemberDisk& disk, Uuid const& pool_uuid, Uuid const& member_uuid, std::string const& pool_name);
// Reads and verifies a member's label; the error says the disk is not a kasou pool member.
ErrorOr<MemberLabel> read_member_label(MemberDisk& disk);
// The newest valid superblock on the disk that belongs to pool_uuid, if any.
std::optional<Superblock> read_newest_superblock(MemberDisk& disk, Uuid const& pool_uuid);
// Refuses a disk that is a member of a pool (valid label and superblock), unless force.
ErrorOr<void> check_disk_unused(MemberDisk& disk, bool force);

} // namespace kasou::storage
