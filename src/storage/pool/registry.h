#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

namespace kasou::storage {

// What the host remembers of a pool: its name, identity and where its disks were last seen.
// The pool's own metadata lives on the disks; this is only a directory of them.
struct PoolRecord {
    std::string name;
    std::string uuid;
    std::vector<std::string> disks;
};

// The state directory as given (--state-dir, KASOU_STATE_DIR), made absolute against the working
// directory, so that every path under it (the registry, the locks, the pool control sockets)
// names the same file whatever directory a later command runs in. Refuses an empty text.
ErrorOr<std::string> resolve_state_dir(std::string const& text);

// The registry of known pools: STATE_DIR/pools.json, rewritten atomically (temporary file,
// fsync, rename) under an flock on STATE_DIR/registry.lock, so concurrent kasou processes never
// lose each other's changes. Every function refuses a state_dir that is empty or relative (see
// resolve_state_dir) before it touches anything.
class Registry {
public:
    static ErrorOr<std::vector<PoolRecord>> list(std::string const& state_dir);
    static ErrorOr<PoolRecord> find(std::string const& state_dir, std::string const& name);
    // Runs change on the current records and saves the result, under the registry lock.
    static ErrorOr<void> modify(std::string const& state_dir, std::function<ErrorOr<void>(std::vector<PoolRecord>&)> const& change);

    // Takes STATE_DIR/locks/NAME.lock for this process (recording its pid in it); a pool held by
    // another process gives "pool NAME is in use by pid N". Creates STATE_DIR and proves it
    // writable first, so that a command that goes on to write disks cannot fail for the want of
    // its state directory after it has written them.
    static ErrorOr<Fd> lock_pool(std::string const& state_dir, std::string const& name);
};

} // namespace kasou::storage
