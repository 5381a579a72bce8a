#include "base/sys_signal.h"

#include <cerrno>
#include <pthread.h>
#include <sys/signalfd.h>

namespace kasou::sys {

ErrorOr<Fd> signalfd(sigset_t const& mask)
{
    int fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0)
        return make_errno_error(errno, "signalfd");
    return Fd(fd);
}

ErrorOr<Fd> termination_signalfd()
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    return signalfd(signals);
}

ErrorOr<void> ignore_signal(int signal)
{
    struct sigaction action {};
    action.sa_handler = SIG_IGN;
    if (::sigaction(signal, &action, nullptr) < 0)
        return make_errno_error(errno, "sigaction");
    return {};
}

} // namespace kasou::sys
