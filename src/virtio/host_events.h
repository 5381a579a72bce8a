#pragma once

#include <optional>
#include <vector>
#include <sys/epoll.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"
#include "virtio/split_queue.h"

namespace kasou::virtio {

// The host descriptors a device is fed from (a tap, a console input, sockets), gathered in one
// epoll instance whose own descriptor is the device's VirtioDevice::host_event_fd(). Sources are
// watched edge-triggered: a device that cannot take more input (no receive buffers) remembers that
// a source is readable and drains it when the driver adds buffers, and the I/O thread, which polls
// this instance level-triggered, sees it idle once take() has collected the edges. Used by the I/O
// thread only.
class HostEvents {
public:
    static ErrorOr<HostEvents> create();

    int fd() const { return m_epoll.get(); }
    // Watches `source` for `events` (EPOLLET is added); `token` comes back in take().
    ErrorOr<void> add(int source, u32 events, u64 token);
    ErrorOr<void> modify(int source, u32 events, u64 token);
    void remove(int source);
    // The events that arrived since the last call, without waiting.
    ErrorOr<std::vector<epoll_event>> take();

private:
    explicit HostEvents(Fd epoll)
        : m_epoll(std::move(epoll))
    {
    }
    Fd m_epoll;
};

// Pops the next chain for data from the host. When there is none, asks the driver to notify when
// it adds one and looks again, so a buffer added in between is not missed.
ErrorOr<std::optional<DescriptorChain>> pop_or_request_notification(SplitQueue& queue);

} // namespace kasou::virtio
