#pragma once

// The shared-pool rule: a pool is opened by one process, `kasou pool serve POOL`, and everything
// else that uses its volumes (each `kasou run --disk vol:POOL/VOL`) reaches them through that
// process, over the pool's Unix socket STATE_DIR/locks/POOL.nbd.sock. So any number of VMs use
// volumes of one pool at once, started and stopped in any order.
//
// Lifetime of the serving process (docs/storage.md, "Volumes shared by many VMs"):
//  - attach_served_volume() starts `kasou pool serve POOL --auto` when nothing answers on the
//    socket (none runs, or it crashed). Starters take STATE_DIR/locks/POOL.serve.lock first, so
//    of two racing only one starts a server; the other connects to it.
//  - An auto-started server stops as soon as it has no connection left (ServerOptions::
//    exit_when_unused); it takes the same lock before it goes, so a user connecting at that moment
//    either reaches a server that stays or starts a new one. A server started by hand (without
//    --auto) stays until it is stopped.
//  - Each user holds a PoolLease (a shared flock on STATE_DIR/locks/POOL.users) while it uses the
//    pool; the last one to release it waits until an auto-started server has closed the pool, so a
//    `kasou vol ...` command run after the last VM has exited finds the pool free.
//
// The transport is NBD (NbdClientDevice) today; attach_served_volume() is the one place that
// picks it (see docs/storage.md for how a vhost-user-blk transport slots in).

#include <chrono>
#include <memory>
#include <string>

#include "base/error.h"
#include "base/fd.h"
#include "storage/block_device.h"
#include "storage/nbd/client_device.h"

namespace kasou::storage::nbd {

// STATE_DIR/locks/POOL.nbd.sock: where the process serving POOL listens.
std::string pool_socket_path(std::string const& state_dir, std::string const& pool);
// STATE_DIR/locks/POOL.serve.lock: taken by whoever starts a server or connects to one, and by an
// auto-started server before it stops.
std::string pool_serve_lock_path(std::string const& state_dir, std::string const& pool);
// STATE_DIR/locks/POOL.serve.auto: exists while an auto-started server holds the pool.
std::string pool_serve_auto_path(std::string const& state_dir, std::string const& pool);
// STATE_DIR/locks/POOL.serve.log: the standard error of auto-started servers.
std::string pool_serve_log_path(std::string const& state_dir, std::string const& pool);

// One user's hold on a served pool (see above). Move-only; the destructor releases it and, when it
// was the last, waits (at most LAST_USER_WAIT) for an auto-started server to let the pool go.
class PoolLease {
public:
    static constexpr std::chrono::seconds LAST_USER_WAIT { 30 }; // ends as soon as the server is gone; long only on a loaded host

    static ErrorOr<PoolLease> take(std::string const& state_dir, std::string const& pool);
    PoolLease(PoolLease&&) noexcept = default;
    PoolLease& operator=(PoolLease&&) noexcept = default;
    ~PoolLease();

private:
    PoolLease(std::string state_dir, std::string pool, Fd users);
    std::string m_state_dir;
    std::string m_pool;
    Fd m_users;
};

// Volume VOLUME of POOL through the process that serves the pool, started (`kasou_binary pool
// serve POOL --auto`) if none answers. Take a PoolLease for the pool before, and keep it until
// every device got from here is destroyed. Errors name the pool, and for a server that could not
// start, what it said.
ErrorOr<std::shared_ptr<BlockDevice>> attach_served_volume(std::string const& state_dir, std::string const& pool, std::string const& volume,
    std::string const& kasou_binary, ClientOptions const& options = {});

} // namespace kasou::storage::nbd
