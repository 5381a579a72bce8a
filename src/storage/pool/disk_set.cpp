#include "storage/pool/disk_set.h"

#include <optional>

#include <fmt/format.h>

#include "storage/io/disk_identity.h"

namespace kasou::storage {

ErrorOr<void> check_distinct_disks(std::vector<std::string> const& paths, std::string const& pool, std::vector<MemberDisk const*> const& members)
{
    std::vector<std::optional<DiskIdentity>> seen;
    for (size_t i = 0; i < paths.size(); ++i) {
        auto identity = disk_identity(paths[i]);
        seen.push_back(identity ? std::optional(*identity) : std::nullopt);
        if (!identity)
            continue;
        for (size_t j = 0; j < i; ++j) {
            if (seen[j] == *identity)
                return make_error(fmt::format("disks {} and {} are the same disk ({}); give each disk once", paths[j], paths[i], identity->to_string()));
        }
        for (size_t m = 0; m < members.size(); ++m) {
            if (members[m] && members[m]->identity() == *identity)
                return make_error(ErrorKind::AlreadyExists, fmt::format("disk {} is already member {} of pool {} (as {}); a disk is added once", paths[i], m, pool, members[m]->name()));
        }
    }
    return {};
}

} // namespace kasou::storage
