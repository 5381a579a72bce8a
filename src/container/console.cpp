#include "container/console.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

#include <fmt/format.h>

#include "base/sys_credentials.h"
#include "base/sys_file.h"
#include "base/sys_socket.h"
#include "base/try.h"

namespace kasou::container {

ErrorOr<void> attach_console(int console_socket, Process const& process)
{
    auto master = TRY(sys::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC).map_error([](Error const& error) {
        return error.with_prefix("process.terminal (is devpts mounted at /dev/pts?)");
    }));
    int unlock = 0;
    TRY(sys::ioctl(master.get(), TIOCSPTLCK, &unlock, "TIOCSPTLCK"));
    unsigned number = 0;
    TRY(sys::ioctl(master.get(), TIOCGPTN, &number, "TIOCGPTN"));
    Fd slave(TRY(sys::ioctl(master.get(), TIOCGPTPEER, static_cast<unsigned long>(O_RDWR | O_NOCTTY), "TIOCGPTPEER")));
    if (process.console_width && process.console_height) {
        winsize size {};
        size.ws_row = static_cast<unsigned short>(process.console_height);
        size.ws_col = static_cast<unsigned short>(process.console_width);
        TRY(sys::ioctl(master.get(), TIOCSWINSZ, &size, "TIOCSWINSZ"));
    }
    auto name = fmt::format("/dev/pts/{}", number);
    int const master_fd = master.get();
    TRY(sys::send_with_fds(console_socket, name.data(), name.size(), std::span<int const>(&master_fd, 1)).map_error([](Error const& error) {
        return error.with_prefix("--console-socket");
    }));
    TRY(sys::setsid());
    TRY(sys::ioctl(slave.get(), TIOCSCTTY, 0ul, "TIOCSCTTY"));
    for (int fd = 0; fd < 3; ++fd)
        TRY(sys::dup2(slave.get(), fd));
    return {};
}

} // namespace kasou::container
