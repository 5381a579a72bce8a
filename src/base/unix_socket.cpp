#include "base/unix_socket.h"

#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"

namespace kasou {

ErrorOr<sockaddr_un> unix_address(std::string const& path)
{
    sockaddr_un address {};
    if (path.empty() || path.size() >= sizeof(address.sun_path))
        return make_error(fmt::format("Unix socket path '{}' is empty or longer than {} bytes", path, sizeof(address.sun_path) - 1));
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    return address;
}

ErrorOr<Fd> connect_unix(std::string const& path, int flags)
{
    auto address = TRY(unix_address(path));
    auto socket = TRY(sys::socket(AF_UNIX, SOCK_STREAM | flags, 0));
    TRY(sys::connect(socket.get(), reinterpret_cast<sockaddr const*>(&address), sizeof(address)));
    return socket;
}

ErrorOr<Fd> listen_unix(std::string const& path, int backlog)
{
    auto address = TRY(unix_address(path));
    auto const* generic = reinterpret_cast<sockaddr const*>(&address);
    struct stat st { };
    if (sys::lstat(path, st)) {
        if (!S_ISSOCK(st.st_mode))
            return make_error(ErrorKind::AlreadyExists, fmt::format("{} exists and is not a socket", path));
        if (connect_unix(path))
            return make_error(ErrorKind::Busy, fmt::format("{} is in use by another server", path));
        TRY(sys::unlink(path));
    }
    Fd listener = TRY(sys::socket(AF_UNIX, SOCK_STREAM, 0));
    if (auto bound = sys::bind(listener.get(), generic, sizeof(address)); !bound)
        return tl::unexpected(bound.error().with_prefix(path));
    TRY(sys::listen(listener.get(), backlog));
    return listener;
}

} // namespace kasou
