#include "base/sys_event.h"

#include <cerrno>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include "base/sys_retry.h"

namespace kasou::sys {

ErrorOr<Fd> eventfd(unsigned initial, int flags)
{
    int fd = ::eventfd(initial, flags);
    if (fd < 0)
        return make_errno_error(errno, "eventfd");
    return Fd(fd);
}

ErrorOr<Fd> epoll_create()
{
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0)
        return make_errno_error(errno, "epoll_create1");
    return Fd(fd);
}

ErrorOr<void> epoll_ctl(int epoll_fd, int op, int fd, u32 events, u64 data)
{
    epoll_event event {};
    event.events = events;
    event.data.u64 = data;
    if (::epoll_ctl(epoll_fd, op, fd, &event) < 0)
        return make_errno_error(errno, "epoll_ctl");
    return {};
}

ErrorOr<Fd> timerfd_create()
{
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0)
        return make_errno_error(errno, "timerfd_create");
    return Fd(fd);
}

ErrorOr<void> timerfd_set_deadline(int timer_fd, std::optional<u64> deadline_ns)
{
    itimerspec spec {};
    if (deadline_ns) {
        spec.it_value.tv_sec = static_cast<time_t>(*deadline_ns / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(*deadline_ns % 1'000'000'000);
    }
    if (::timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr) < 0)
        return make_errno_error(errno, "timerfd_settime");
    return {};
}

ErrorOr<u32> epoll_wait(int epoll_fd, std::span<struct epoll_event> events, int timeout_ms)
{
    int ready = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (ready < 0)
        return errno == EINTR ? 0u : ErrorOr<u32>(make_errno_error(errno, "epoll_wait"));
    return static_cast<u32>(ready);
}

ErrorOr<int> poll(struct pollfd* fds, size_t count, int timeout_ms)
{
    int n = detail::retry_on_eintr([&] { return ::poll(fds, count, timeout_ms); });
    if (n < 0)
        return make_errno_error(errno, "poll");
    return n;
}

} // namespace kasou::sys
