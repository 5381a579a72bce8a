#include "base/sys_process.h"

#include <cerrno>
#include <fcntl.h>
#include <csignal>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sys_retry.h"

namespace kasou::sys {

ErrorOr<int> spawn_and_wait(std::vector<std::string> const& argv)
{
    std::vector<char*> args;
    for (auto const& arg : argv)
        args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
    if (rc != 0)
        return make_errno_error(rc, "posix_spawnp");
    int status = 0;
    if (detail::retry_on_eintr([&] { return ::waitpid(pid, &status, 0); }) < 0)
        return make_errno_error(errno, "waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ErrorOr<void> spawn_daemon(std::vector<std::string> const& argv, std::string const& log_path, int inherit)
{
    // Everything the children need is prepared here: between fork and exec only async-signal-safe
    // calls are made (this process may have other threads).
    std::vector<char*> args;
    for (auto const& arg : argv)
        args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    char const* log = log_path.c_str();
    pid_t child = ::fork();
    if (child < 0)
        return make_errno_error(errno, "fork");
    if (child == 0) {
        ::setsid();
        pid_t daemon = ::fork();
        if (daemon != 0)
            ::_exit(daemon < 0 ? 1 : 0);
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        int err = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (null < 0 || err < 0 || ::dup2(null, 0) < 0 || ::dup2(null, 1) < 0 || ::dup2(err, 2) < 0 || ::fcntl(inherit, F_SETFD, 0) < 0)
            ::_exit(127);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    if (detail::retry_on_eintr([&] { return ::waitpid(child, &status, 0); }) < 0)
        return make_errno_error(errno, "waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return make_errno_error(EAGAIN, "fork (daemon)");
    return {};
}

ErrorOr<pid_t> waitpid(pid_t pid, int& status, int options)
{
    pid_t result = detail::retry_on_eintr([&] { return ::waitpid(pid, &status, options); });
    if (result < 0)
        return make_errno_error(errno, "waitpid");
    return result;
}

ErrorOr<void> kill(pid_t pid, int signal)
{
    if (::kill(pid, signal) < 0)
        return make_errno_error(errno, "kill");
    return {};
}

bool process_exists(pid_t pid)
{
    return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

} // namespace kasou::sys
