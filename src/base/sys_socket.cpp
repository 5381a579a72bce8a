#include "base/sys_socket.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <vector>

#include "base/sys_retry.h"
#include "base/try.h"

namespace kasou::sys {

ErrorOr<Fd> socket(int domain, int type, int protocol)
{
    int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return make_errno_error(errno, "socket");
    return Fd(fd);
}

ErrorOr<void> bind(int fd, struct sockaddr const* address, socklen_t length)
{
    if (::bind(fd, address, length) < 0)
        return make_errno_error(errno, "bind");
    return {};
}

ErrorOr<void> listen(int fd, int backlog)
{
    if (::listen(fd, backlog) < 0)
        return make_errno_error(errno, "listen");
    return {};
}

ErrorOr<void> connect(int fd, struct sockaddr const* address, socklen_t length)
{
    if (detail::retry_on_eintr([&] { return ::connect(fd, address, length); }) < 0)
        return make_errno_error(errno, "connect");
    return {};
}

ErrorOr<Fd> accept(int fd)
{
    int client = detail::retry_on_eintr([&] { return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); });
    if (client < 0)
        return make_errno_error(errno, "accept4");
    return Fd(client);
}

ErrorOr<void> setsockopt(int fd, int level, int name, int value)
{
    if (::setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        return make_errno_error(errno, "setsockopt");
    return {};
}

ErrorOr<void> setsockopt_timeout(int fd, int name, u64 milliseconds)
{
    timeval value { .tv_sec = static_cast<time_t>(milliseconds / 1000), .tv_usec = static_cast<suseconds_t>(milliseconds % 1000 * 1000) };
    if (::setsockopt(fd, SOL_SOCKET, name, &value, sizeof(value)) < 0)
        return make_errno_error(errno, "setsockopt");
    return {};
}

ErrorOr<size_t> recv(int fd, void* buffer, size_t size, int flags)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::recv(fd, buffer, size, flags); });
    if (n < 0)
        return make_errno_error(errno, "recv");
    return static_cast<size_t>(n);
}

ErrorOr<void> send_all(int fd, struct iovec const* vectors, size_t count)
{
    auto send_some = [&](iovec const* first, size_t n) -> ErrorOr<size_t> {
        msghdr message {};
        message.msg_iov = const_cast<iovec*>(first); // sendmsg only reads the vectors
        message.msg_iovlen = std::min<size_t>(n, IOV_MAX);
        ssize_t sent = detail::retry_on_eintr([&] { return ::sendmsg(fd, &message, MSG_NOSIGNAL); });
        if (sent < 0)
            return make_errno_error(errno, "sendmsg");
        return static_cast<size_t>(sent);
    };
    size_t total = 0;
    for (size_t i = 0; i < count; ++i)
        total += vectors[i].iov_len;
    size_t sent = TRY(send_some(vectors, count));
    if (sent == total)
        return {};
    // A short send: continue on a copy of the vectors, advanced past what went out.
    std::vector<iovec> pending(vectors, vectors + count);
    size_t first = 0;
    for (;;) {
        total -= sent;
        while (first < pending.size() && sent >= pending[first].iov_len) {
            sent -= pending[first].iov_len;
            ++first;
        }
        if (total == 0)
            return {};
        pending[first].iov_base = static_cast<u8*>(pending[first].iov_base) + sent;
        pending[first].iov_len -= sent;
        sent = TRY(send_some(pending.data() + first, pending.size() - first));
    }
}

ErrorOr<void> shutdown(int fd, int how)
{
    if (::shutdown(fd, how) < 0)
        return make_errno_error(errno, "shutdown");
    return {};
}

ErrorOr<void> getsockname(int fd, struct sockaddr* address, socklen_t& length)
{
    if (::getsockname(fd, address, &length) < 0)
        return make_errno_error(errno, "getsockname");
    return {};
}

ErrorOr<size_t> send(int fd, void const* buffer, size_t size, int flags)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::send(fd, buffer, size, flags | MSG_NOSIGNAL); });
    if (n < 0)
        return make_errno_error(errno, "send");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> recv_with_fds(int fd, void* buffer, size_t size, std::vector<Fd>& fds, size_t max_fds)
{
    constexpr size_t MAX_CONTROL_FDS = 16;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_CONTROL_FDS)];
    iovec vector { buffer, size };
    msghdr message {};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = detail::retry_on_eintr([&] { return ::recvmsg(fd, &message, MSG_CMSG_CLOEXEC); });
    if (n < 0)
        return make_errno_error(errno, "recvmsg");
    size_t received = 0;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int passed;
            std::memcpy(&passed, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            fds.emplace_back(passed);
            ++received;
        }
    }
    if (message.msg_flags & MSG_CTRUNC)
        return make_error("recvmsg: more descriptors were passed than fit (control message truncated)");
    if (received > max_fds)
        return make_error("recvmsg: more descriptors passed than the message allows");
    return static_cast<size_t>(n);
}

ErrorOr<void> send_with_fds(int fd, void const* buffer, size_t size, std::span<int const> fds)
{
    constexpr size_t MAX_CONTROL_FDS = 16;
    if (fds.size() > MAX_CONTROL_FDS)
        return make_error("sendmsg: too many descriptors");
    if (fds.empty() || size == 0) {
        iovec vector { const_cast<void*>(buffer), size };
        return send_all(fd, &vector, 1);
    }
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_CONTROL_FDS)] {};
    iovec vector { const_cast<void*>(buffer), size };
    msghdr message {};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    ssize_t sent = detail::retry_on_eintr([&] { return ::sendmsg(fd, &message, MSG_NOSIGNAL); });
    if (sent < 0)
        return make_errno_error(errno, "sendmsg");
    if (static_cast<size_t>(sent) == size)
        return {};
    iovec rest { static_cast<u8*>(const_cast<void*>(buffer)) + sent, size - static_cast<size_t>(sent) };
    return send_all(fd, &rest, 1);
}

ErrorOr<void> socketpair(int domain, int type, Fd& first, Fd& second)
{
    int fds[2];
    if (::socketpair(domain, type | SOCK_CLOEXEC, 0, fds) < 0)
        return make_errno_error(errno, "socketpair");
    first = Fd(fds[0]);
    second = Fd(fds[1]);
    return {};
}

} // namespace kasou::sys
