#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include "base/error.h"
#include "base/event_fd.h"

namespace kasou::virtio {

// Parks a device's I/O thread between two requests on demand and lets it go again, so a paused
// machine has no device request in flight. The controlling thread calls pause() (which returns once
// the I/O thread is parked, or when no I/O thread runs) and resume(); the I/O thread watches fd(),
// and when it is readable calls park(), which returns on resume(). started() is called by whoever
// spawns the I/O thread, before it does, and ended() by the I/O thread as it exits, so pause()
// never waits on a thread that is not there. Thread-safe; m_lock is a leaf lock.
class PauseGate {
public:
    static ErrorOr<std::unique_ptr<PauseGate>> create();

    int fd() const { return m_event.fd(); }

    void pause();
    void resume();

    void started();
    void ended();
    void park();

private:
    explicit PauseGate(EventFd event)
        : m_event(std::move(event))
    {
    }

    EventFd m_event;
    std::mutex m_lock;
    std::condition_variable m_changed;
    bool m_running { false };
    bool m_pause_requested { false };
    bool m_parked { false };
};

} // namespace kasou::virtio
