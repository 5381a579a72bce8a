#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "storage/pool/pool_handle.h"
#include "vhost_user/blk_export.h"

namespace kasou::vhost_user {

// The vhost-user-blk exports of the process serving one pool (`kasou pool serve`), by socket path.
// Added and removed while the process runs, through the pool's control socket: attach() makes it
// answer the requests {"op": "vhost-user-export", "volume": VOL, "socket": PATH, "queues": N},
// {"op": "vhost-user-unexport", "socket": PATH} or {"op": "vhost-user-unexport", "volume": VOL}
// (every export of it), and {"op": "vhost-user-list"}. Thread-safe (m_lock, a leaf lock); the pool
// must outlive the table, which withdraws its requests and stops every export when destroyed.
class ExportTable {
public:
    ExportTable(storage::PoolHandle& pool, BlkBackendOptions defaults);
    ~ExportTable();
    ExportTable(ExportTable const&) = delete;
    ExportTable& operator=(ExportTable const&) = delete;

    // Exports volume VOL of the pool on a new socket at `path` (absolute); queues 0 takes the default.
    ErrorOr<void> add(std::string const& volume, std::string const& path, u16 queues);
    // Stops the export on `path`.
    ErrorOr<void> remove(std::string const& path);
    // Stops every export of `volume`; how many there were (none is an error).
    ErrorOr<size_t> remove_volume(std::string const& volume);
    // Answers the pool's control socket (see the class comment).
    void attach(storage::PoolControlServer& control);

private:
    struct Entry {
        std::string volume;
        std::unique_ptr<BlkExport> exported;
    };
    nlohmann::json answer(nlohmann::json const& request);

    storage::PoolHandle& m_pool;
    BlkBackendOptions m_defaults;
    std::mutex m_lock;
    std::map<std::string, Entry> m_exports;
    storage::PoolControlServer* m_control { nullptr };
};

} // namespace kasou::vhost_user
