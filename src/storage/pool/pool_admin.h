#pragma once

#include <functional>
#include <string>
#include <vector>

#include "storage/pool/format.h"
#include "storage/pool/pool_handle.h"

namespace kasou::storage {

class ThinPool;

// Host-level pool operations behind `kasou pool ...`: each ties the pool on its disks to the
// registry in state_dir, and holds the pool lock while it works. Wherever a set of disks is formed
// (create, add, import, repair --with) a disk named twice, by whatever paths, is refused
// (check_distinct_disks), and every disk is claimed before it is read or written, so a disk that
// another process holds (a member of a pool it serves) is refused, --force or not.

// Progress of a long copy: bytes done of total.
using ProgressFunction = std::function<void(u64 done, u64 total)>;

ErrorOr<SegmentKind> parse_layout(std::string_view text);

struct CreatePoolOptions {
    std::string name;
    SegmentKind layout { SegmentKind::Linear };
    u64 stripe_size { 64 * KiB };
    std::vector<std::string> disks;
    bool force { false }; // overwrite disks that belong to another pool
};
ErrorOr<void> create_pool(std::string const& state_dir, CreatePoolOptions const& options);

// Grows the pool by the disks: one linear segment each for a linear pool, one segment of the
// pool's first layout over all of them otherwise (a mirror takes 2 or 3 disks at a time).
// When another process holds the pool (it serves volumes), the request goes to it through the pool
// control socket and the pool grows online.
ErrorOr<void> add_disks(std::string const& state_dir, std::string const& name, std::vector<std::string> const& disks, bool force);

// What add_disks does once the pool is open in this process: grows it and records the disks in the
// registry. The pool keeps them open, and so claimed (FileMemberDisk), as long as it is open.
ErrorOr<void> grow_open_pool(ThinPool& pool, std::string const& state_dir, std::string const& name,
    std::vector<std::string> const& disks, bool force);

// Finds the pool the disks belong to and registers it; returns its name.
ErrorOr<std::string> import_pool(std::string const& state_dir, std::vector<std::string> const& disks);

// Wipes the pool's labels and superblocks and forgets it. Refuses a pool with volumes unless force.
ErrorOr<void> destroy_pool(std::string const& state_dir, std::string const& name, bool force);

// With replace empty: resynchronizes failed mirror members whose disks are back. Otherwise
// replace names a failed member (its index or former disk path) and with the disk to put in its
// place, which is then resynchronized. Returns how many members were resynchronized.
ErrorOr<u32> repair_pool(std::string const& state_dir, std::string const& name, std::string const& replace, std::string const& with,
    ProgressFunction const& progress);

} // namespace kasou::storage
