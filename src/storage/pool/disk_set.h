#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "storage/pool/member_disk.h"

namespace kasou::storage {

// Refuses a set of disks in which one disk appears twice, by whatever names (./d.img and d.img,
// a symbolic or hard link, a loop device and its file): disks are compared by DiskIdentity,
// never by path. members are the disks pool already has (null entries, missing disks, are
// skipped); a path that names one of them is refused too. A path that cannot be examined is left
// to the open that follows, which reports why.
ErrorOr<void> check_distinct_disks(std::vector<std::string> const& paths, std::string const& pool = {}, std::vector<MemberDisk const*> const& members = {});

} // namespace kasou::storage
