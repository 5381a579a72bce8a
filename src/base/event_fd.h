#pragma once

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

namespace kasou {

// A Linux eventfd: a counter that one side signals and another waits on (irqfd, ioeventfd, wake-ups
// of event loops). Non-blocking and close-on-exec.
class EventFd {
public:
    static ErrorOr<EventFd> create();

    int fd() const { return m_fd.get(); }
    ErrorOr<void> signal(u64 count = 1) const;
    // Returns the accumulated count and resets it; 0 when nothing was signalled.
    ErrorOr<u64> consume() const;

private:
    explicit EventFd(Fd fd)
        : m_fd(std::move(fd))
    {
    }
    Fd m_fd;
};

} // namespace kasou
