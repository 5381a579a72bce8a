#include "vmm/console.h"

#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/sys_socket.h"
#include "base/try.h"

namespace kasou::vmm {

ErrorOr<Console> Console::open(SerialSpec const& spec)
{
    Console console;
    switch (spec.kind) {
    case SerialSpec::Kind::Stdio: {
        console.m_output_fd = STDOUT_FILENO;
        if (::fcntl(STDIN_FILENO, F_GETFD) >= 0)
            console.m_input_fd = STDIN_FILENO;
        termios terminal {};
        if (console.m_input_fd >= 0 && ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &terminal) == 0) {
            console.m_saved_terminal = terminal;
            termios raw = terminal;
            raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | IXON);
            raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
            ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        }
        return console;
    }
    case SerialSpec::Kind::File: {
        console.m_owned = TRY(sys::open(spec.path, O_WRONLY | O_CREAT | O_TRUNC, 0644).map_error(
            [&](Error const& error) { return error.with_prefix("--serial file"); }));
        console.m_output_fd = console.m_owned.get();
        return console;
    }
    case SerialSpec::Kind::Unix: {
        sockaddr_un address {};
        address.sun_family = AF_UNIX;
        if (spec.path.size() >= sizeof(address.sun_path))
            return make_error(fmt::format("--serial unix:{}: the path is too long for a Unix socket", spec.path));
        std::memcpy(address.sun_path, spec.path.c_str(), spec.path.size() + 1);
        console.m_owned = TRY(sys::socket(AF_UNIX, SOCK_STREAM, 0));
        if (auto connected = sys::connect(console.m_owned.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)); !connected)
            return tl::unexpected(connected.error().with_prefix(
                fmt::format("--serial unix:{}: cannot connect (is something listening there?)", spec.path)));
        console.m_output_fd = console.m_owned.get();
        console.m_input_fd = console.m_owned.get();
        return console;
    }
    }
    return make_error("unknown serial kind");
}

Console::Console(Console&& other) noexcept
    : m_owned(std::move(other.m_owned))
    , m_output_fd(std::exchange(other.m_output_fd, -1))
    , m_input_fd(std::exchange(other.m_input_fd, -1))
    , m_saved_terminal(std::exchange(other.m_saved_terminal, std::nullopt))
{
}

Console::~Console()
{
    if (m_saved_terminal)
        ::tcsetattr(STDIN_FILENO, TCSANOW, &*m_saved_terminal);
}

void Console::write(std::span<u8 const> bytes) const
{
    if (m_output_fd < 0)
        return;
    // MSG_NOSIGNAL is not available for write(); SIGPIPE is ignored process-wide by the caller.
    (void)sys::write_exact(m_output_fd, bytes.data(), bytes.size());
}

} // namespace kasou::vmm
