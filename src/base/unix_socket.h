#pragma once

#include <string>

#include <sys/un.h>

#include "base/error.h"
#include "base/fd.h"

namespace kasou {

// Unix stream sockets by path, shared by every server and client kasou has (NBD, vsock, the pool
// control socket).

// The address of `path`; fails for an empty path or one longer than sun_path holds.
ErrorOr<sockaddr_un> unix_address(std::string const& path);
// Connects to the socket at path; `flags` go to socket(2)'s type (e.g. SOCK_NONBLOCK).
ErrorOr<Fd> connect_unix(std::string const& path, int flags = 0);
// Listens on path. A socket file already there is taken over when nothing answers on it (left by a
// process that died); one that still answers, or a file that is not a socket, is refused.
ErrorOr<Fd> listen_unix(std::string const& path, int backlog = 128);

} // namespace kasou
