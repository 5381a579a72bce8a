#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "storage/pool/pool_handle.h"
#include "vhost_user/blk_backend.h"
#include "vhost_user/export_table.h"

namespace kasou::vhost_user {

// Splits "VOL=SOCKET"; the socket path is made absolute.
ErrorOr<std::pair<std::string, std::string>> parse_vhost_user_export(std::string const& text);

// The vhost-user-blk side of `kasou pool serve`: an export table over the served pool that answers
// the pool's control socket (`kasou vol export --vhost-user`, `kasou vol unexport`), with the
// exports named on the command line ("VOL=SOCKET") already added. Destroying it stops every
// export (requests taken are answered); the pool must outlive it.
ErrorOr<std::shared_ptr<ExportTable>> attach_exports(storage::PoolHandle& pool, BlkBackendOptions const& defaults, std::vector<std::string> const& exports);

} // namespace kasou::vhost_user
