#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "vhost_user/blk_backend.h"

namespace kasou::vhost_user {

// What `kasou pool serve POOL` was asked to do.
struct PoolServeSpec {
    std::string state_dir;
    std::string pool;
    std::vector<std::string> exports; // "VOL=SOCKET": vhost-user exports to start with
    BlkBackendOptions backend;        // defaults for every export
};

// Splits "VOL=SOCKET"; the socket path is made absolute.
ErrorOr<std::pair<std::string, std::string>> parse_vhost_user_export(std::string const& text);

// Holds the pool and serves its vhost-user exports (those named, and those added and removed
// through the pool's control socket by `kasou vol export --vhost-user` / `kasou vol unexport`)
// until SIGTERM or SIGINT; then stops every export (requests taken are answered) and closes the pool.
ErrorOr<void> serve_pool(PoolServeSpec const& spec);

} // namespace kasou::vhost_user
