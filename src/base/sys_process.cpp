#include "base/sys_process.h"

#include <cerrno>
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
