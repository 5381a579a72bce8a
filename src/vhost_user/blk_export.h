#pragma once

#include <memory>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/event_fd.h"
#include "base/fd.h"
#include "storage/block_device.h"
#include "vhost_user/blk_backend.h"

namespace kasou::vhost_user {

// A block device offered as a vhost-user-blk back-end on a Unix socket (mode 0600, the serving
// user's alone). One thread accepts a front-end, serves it (a BlkBackend) until it disconnects or
// breaks the protocol, then accepts the next: the socket keeps listening for as long as the export
// lives, so a front-end that restarts (or reconnects after a back-end restart) finds it again. One
// front-end at a time; a second one waits in the listen backlog until the first is gone.
class BlkExport {
public:
    static ErrorOr<std::unique_ptr<BlkExport>> start(std::string path, std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options);
    // Disconnects the front-end (its rings stop; requests taken are answered first) and removes the socket.
    ~BlkExport();
    BlkExport(BlkExport const&) = delete;
    BlkExport& operator=(BlkExport const&) = delete;

    std::string const& path() const { return m_path; }

private:
    BlkExport(std::string path, Fd listener, EventFd stop, std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options);
    void run();
    // Serves one connection until it ends (or the export stops).
    void serve(Fd connection);

    std::string m_path;
    Fd m_listener;
    EventFd m_stop;
    std::shared_ptr<storage::BlockDevice> m_disk;
    BlkBackendOptions m_options;
    std::thread m_thread;
};

} // namespace kasou::vhost_user
