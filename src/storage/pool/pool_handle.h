#pragma once

// The entry point for everything outside src/storage/pool that serves volumes: `kasou nbd serve`
// and the VMM's virtio-blk open a pool here, get volumes as BlockDevices, and close it.
// This interface is kept stable; new needs are met by adding members, not changing these.
//
//   auto handle = TRY(storage::PoolHandle::open(state_dir, "tank", PoolHandle::Control::Answer)); // takes the pool lock
//   auto [pool_name, vol_name] = TRY(storage::parse_volume_path("tank/disk0"));
//   std::shared_ptr<storage::BlockDevice> disk = TRY(handle.volume(vol_name));
//   ... disk->read / write / flush / discard / write_zeroes / block_status from any thread ...
//   TRY(handle.close());                                                 // commits, unlocks

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "storage/block_device.h"

namespace kasou::storage {

class ThinPool;
class PoolControlServer;

// One pool opened by name from the registry in state_dir, held exclusively by this process for the
// handle's lifetime (a second opener, in any process, gets "pool NAME is in use by pid N"; `kasou
// pool add` instead reaches the holder through the pool's control socket, see pool_control.h).
// Each member disk is claimed on its own (an exclusive OFD lock, see RawFileOptions::lock) as long
// as the pool holds it, so whatever else would write it (pool create --force under another state
// directory, nbd serve --file, run --disk) is refused.
// Volumes handed out stay valid objects after close(): their I/O then fails with "pool NAME is
// closed". Move-only; the destructor closes a handle that was not closed, logging any error.
class PoolHandle {
public:
    // Finds NAME in state_dir's registry, locks it and opens it from its member disks (replaying
    // nothing: the last committed state is the state). Errors name the pool and the cause.
    // A process that keeps the pool open while it serves volumes (nbd serve, run) passes
    // Control::Answer, so `kasou pool add` can reach it (see pool_control.h); short-lived commands
    // do not.
    enum class Control { None, Answer };
    static ErrorOr<PoolHandle> open(std::string const& state_dir, std::string const& name, Control control = Control::None);

    PoolHandle(PoolHandle&&) noexcept;
    PoolHandle& operator=(PoolHandle&&) noexcept;
    ~PoolHandle();

    std::string const& name() const { return m_name; }

    // The volume or snapshot VOL of this pool; snapshots are read-only devices (read_only() is
    // true and writes fail). Asking twice for the same name returns the same device.
    ErrorOr<std::shared_ptr<BlockDevice>> volume(std::string const& volume_name);
    // Names of all volumes and snapshots, sorted.
    std::vector<std::string> volume_names() const;

    // Makes everything written so far durable (as flush() on every volume would).
    ErrorOr<void> commit();
    // Commits, stops background work, releases the lock. Later calls do nothing.
    ErrorOr<void> close();

    // The pool's control socket server, when opened with Control::Answer (else null).
    PoolControlServer* control() { return m_control.get(); }

    // The pool itself, for the pool and vol commands.
    ThinPool& pool() { return *m_pool; }

private:
    PoolHandle(std::string name, std::shared_ptr<ThinPool> pool, Fd lock, std::unique_ptr<PoolControlServer> control);

    std::string m_name;
    std::shared_ptr<ThinPool> m_pool;
    Fd m_lock; // STATE_DIR/locks/NAME.lock; each member disk is claimed by its FileMemberDisk
    std::unique_ptr<PoolControlServer> m_control; // stopped before the pool closes
};

// Splits "POOL/VOL" into {POOL, VOL}; rejects any other shape with an error naming the text.
ErrorOr<std::pair<std::string, std::string>> parse_volume_path(std::string_view text);

} // namespace kasou::storage
