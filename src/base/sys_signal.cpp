#include "base/sys_signal.h"

#include <cerrno>
#include <sys/signalfd.h>

namespace kasou::sys {

ErrorOr<Fd> signalfd(sigset_t const& mask)
{
    int fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0)
        return make_errno_error(errno, "signalfd");
    return Fd(fd);
}

} // namespace kasou::sys
