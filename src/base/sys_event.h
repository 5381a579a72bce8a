#pragma once

#include <optional>
#include <span>

// System call wrappers: readiness and wake-ups (eventfd, epoll, poll).
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <cstddef>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

struct pollfd;

struct epoll_event;

namespace kasou::sys {

ErrorOr<Fd> eventfd(unsigned initial, int flags);
ErrorOr<Fd> epoll_create();
ErrorOr<void> epoll_ctl(int epoll_fd, int op, int fd, u32 events, u64 data);
// epoll_wait into events; returns how many are ready. A signal that interrupts the wait is not an
// error: it returns 0, so the caller looks at its own state and waits again.
ErrorOr<u32> epoll_wait(int epoll_fd, std::span<struct epoll_event> events, int timeout_ms);
// A CLOCK_MONOTONIC timerfd (close-on-exec, non-blocking).
ErrorOr<Fd> timerfd_create();
// Arms the timerfd to expire once at the absolute CLOCK_MONOTONIC time deadline_ns, or disarms it.
ErrorOr<void> timerfd_set_deadline(int timer_fd, std::optional<u64> deadline_ns);
// poll; returns the number of ready descriptors (0 on timeout).
ErrorOr<int> poll(struct pollfd* fds, size_t count, int timeout_ms);

} // namespace kasou::sys
