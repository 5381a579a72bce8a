#pragma once

#include "base/error.h"
#include "base/types.h"

namespace kasou::virtio {

// Where a transport's queue notifications can skip the VMM: the machine turns a guest write to a
// notification address into a signal of the queue's eventfd inside the kernel (a KVM ioeventfd).
// The transport routes each queue's address while the driver has memory decoding on, and moves
// the routes when the driver moves the BAR. A write the router does not cover still works: it
// reaches the transport's bar_write(), which signals the same eventfd (a userspace exit).
class NotifyRouter {
public:
    virtual ~NotifyRouter() = default;

    // Starts (or stops) sending writes of any size at guest-physical `address` to `event_fd`.
    virtual ErrorOr<void> route(u64 address, int event_fd) = 0;
    virtual ErrorOr<void> unroute(u64 address, int event_fd) = 0;
};

} // namespace kasou::virtio
