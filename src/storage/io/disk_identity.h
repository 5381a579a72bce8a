#pragma once

#include <string>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage {

// What a disk is, apart from the name it was given: two names (x.img and ./x.img, a symbolic
// link, a hard link, two nodes of one block device, a loop device and its backing file) name the
// same disk exactly when their identities are equal. A regular file is its file system's device
// and inode number; a block device its device number, except a loop device, which is the file it
// is bound to.
struct DiskIdentity {
    u64 device { 0 }; // st_dev of a file; st_rdev of a block device
    u64 inode { 0 }; // st_ino of a file; 0 for a block device

    bool operator==(DiskIdentity const&) const = default;
    // "file 254:0 inode 1234" or "block device 8:16", for messages.
    std::string to_string() const;
};

// The identity of the open disk fd (a regular file or a block device; anything else is refused,
// naming name).
ErrorOr<DiskIdentity> disk_identity(int fd, std::string const& name);
// The identity of the disk at path (symbolic links followed); opens it read-only for a moment.
ErrorOr<DiskIdentity> disk_identity(std::string const& path);

} // namespace kasou::storage
