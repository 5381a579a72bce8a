#pragma once

// System call wrappers: sockets (set-up, connection, transfer).
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <cstddef>
#include <span>
#include <vector>
#include <sys/socket.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

struct sockaddr;
struct iovec;

namespace kasou::sys {

ErrorOr<Fd> socket(int domain, int type, int protocol);
ErrorOr<void> bind(int fd, struct sockaddr const* address, socklen_t length);
ErrorOr<void> listen(int fd, int backlog);
ErrorOr<void> connect(int fd, struct sockaddr const* address, socklen_t length);
// accept4 with SOCK_CLOEXEC.
ErrorOr<Fd> accept(int fd);
ErrorOr<void> setsockopt(int fd, int level, int name, int value);
// SO_SNDTIMEO / SO_RCVTIMEO (`name`) in milliseconds; 0 means no timeout.
ErrorOr<void> setsockopt_timeout(int fd, int name, u64 milliseconds);
// recv; 0 means the peer closed its side.
ErrorOr<size_t> recv(int fd, void* buffer, size_t size, int flags);
// Sends all of the vectors, looping over short sends; never raises SIGPIPE (MSG_NOSIGNAL).
ErrorOr<void> send_all(int fd, struct iovec const* vectors, size_t count);
ErrorOr<void> shutdown(int fd, int how);
ErrorOr<void> getsockname(int fd, struct sockaddr* address, socklen_t& length);
// One send(2) with MSG_NOSIGNAL added; returns how much the socket took (EAGAIN as an error).
ErrorOr<size_t> send(int fd, void const* buffer, size_t size, int flags);
// One recvmsg into buffer that also takes the descriptors passed with SCM_RIGHTS (close-on-exec),
// appended to fds. More than max_fds descriptors, or a truncated control message, is an error (the
// descriptors received are closed all the same). 0 bytes means the peer closed its side.
ErrorOr<size_t> recv_with_fds(int fd, void* buffer, size_t size, std::vector<Fd>& fds, size_t max_fds);
// Sends all of buffer, with the descriptors passed as SCM_RIGHTS on its first byte.
ErrorOr<void> send_with_fds(int fd, void const* buffer, size_t size, std::span<int const> fds);

ErrorOr<void> socketpair(int domain, int type, Fd& first, Fd& second);

} // namespace kasou::sys
