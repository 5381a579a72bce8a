#pragma once

// System call wrappers: readiness and wake-ups (eventfd, epoll, poll).
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <cstddef>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

struct pollfd;

namespace kasou::sys {

ErrorOr<Fd> eventfd(unsigned initial, int flags);
ErrorOr<Fd> epoll_create();
ErrorOr<void> epoll_ctl(int epoll_fd, int op, int fd, u32 events, u64 data);
// poll; returns the number of ready descriptors (0 on timeout).
ErrorOr<int> poll(struct pollfd* fds, size_t count, int timeout_ms);

} // namespace kasou::sys
