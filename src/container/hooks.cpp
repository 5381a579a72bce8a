#include "container/hooks.h"

#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_credentials.h"
#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/sys_process.h"
#include "base/sys_signal.h"
#include "base/try.h"

namespace kasou::container {

namespace {

ErrorOr<void> run_hook(Hook const& hook, std::string_view stage, size_t index, std::string const& state_json)
{
    int fds[2];
    TRY(sys::pipe(fds, O_CLOEXEC));
    Fd read_end(fds[0]), write_end(fds[1]);
    pid_t pid = TRY(sys::clone_process(0));
    if (pid == 0) {
        write_end.reset();
        (void)sys::dup2(read_end.get(), 0); // the hook still runs, without the state, if this fails
        std::vector<std::string> args = hook.args.empty() ? std::vector<std::string> { hook.path } : hook.args;
        auto error = sys::execve(hook.path, args, hook.env);
        fmt::print(stderr, "kasou oci: {} hook {}: {}\n", stage, hook.path, error.error().to_string());
        ::_exit(127);
    }
    read_end.reset();
    // A hook that does not read its input must not block us: the pipe holds a state document.
    TRY(sys::ignore_signal(SIGPIPE));
    (void)sys::write_exact(write_end.get(), state_json.data(), state_json.size());
    write_end.reset();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(hook.timeout.value_or(0));
    auto pause = std::chrono::microseconds(100);
    int status = 0;
    for (;;) {
        pid_t done = TRY(sys::waitpid(pid, status, hook.timeout ? WNOHANG : 0));
        if (done == pid)
            break;
        if (std::chrono::steady_clock::now() >= deadline) {
            (void)sys::kill(pid, SIGKILL);
            (void)sys::waitpid(pid, status, 0);
            return make_error(ErrorKind::TimedOut,
                fmt::format("hooks.{}[{}] ({}) did not finish within its timeout of {} s", stage, index, hook.path, *hook.timeout));
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return {};
    return make_error(fmt::format("hooks.{}[{}] ({}) failed: {}", stage, index, hook.path,
        WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status)) : fmt::format("signal {}", WTERMSIG(status))));
}

} // namespace

ErrorOr<void> run_hooks(std::vector<Hook> const& hooks, std::string_view stage, std::string const& state_json)
{
    for (size_t i = 0; i < hooks.size(); ++i)
        TRY(run_hook(hooks[i], stage, i, state_json));
    return {};
}

} // namespace kasou::container
