#include "container/sync_channel.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <vector>

#include <fmt/format.h>

#include "base/sys_socket.h"
#include "base/try.h"

namespace kasou::container {

namespace {
constexpr size_t MAX_MESSAGE = 64 * 1024;
}

ErrorOr<void> sync_send(int fd, SyncKind kind, std::string const& text)
{
    char byte = static_cast<char>(kind);
    iovec vectors[2] { { &byte, 1 }, { const_cast<char*>(text.data()), std::min(text.size(), MAX_MESSAGE - 1) } };
    return sys::send_all(fd, vectors, 2);
}

ErrorOr<SyncMessage> sync_receive(int fd)
{
    std::vector<char> buffer(MAX_MESSAGE);
    size_t length = TRY(sys::recv(fd, buffer.data(), buffer.size(), 0));
    if (length == 0)
        return make_error(ErrorKind::Disconnected, "the container's init ended during create");
    SyncMessage message { static_cast<SyncKind>(buffer[0]), std::string(buffer.data() + 1, length - 1) };
    if (message.kind == SyncKind::Failed)
        return make_error(message.text);
    return message;
}

ErrorOr<std::string> sync_expect(int fd, SyncKind kind)
{
    auto message = TRY(sync_receive(fd));
    if (message.kind != kind)
        return make_error(ErrorKind::Internal, fmt::format("create: expected message '{}', got '{}'", static_cast<char>(kind),
                                                   static_cast<char>(message.kind)));
    return message.text;
}

} // namespace kasou::container
