#include "container/exec_process.h"

#include <fcntl.h>
#include <filesystem>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_credentials.h"
#include "base/sys_namespace.h"
#include "base/sys_process.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "container/cgroup.h"
#include "container/console.h"
#include "container/namespaces.h"
#include "container/process_setup.h"
#include "container/seccomp_filter.h"
#include "container/state_store.h"
#include "container/sync_channel.h"

namespace kasou::container {

namespace {

char const* proc_name(NamespaceType type)
{
    switch (type) {
    case NamespaceType::Network:
        return "net";
    case NamespaceType::Mount:
        return "mnt";
    default:
        return namespace_name(type).data();
    }
}

// Everything between clone and execve in the new process; returns only on failure.
ErrorOr<void> exec_steps(ExecRequest const& request, Linux const& joined, int sync_fd, int console_fd)
{
    TRY(sync_expect(sync_fd, SyncKind::Go));
    TRY(join_namespaces(joined, false));
    if (request.process.terminal)
        TRY(attach_console(console_fd, request.process));
    std::optional<SeccompFilter> filter;
    if (request.config->linux.seccomp) {
        filter.emplace(TRY(SeccompFilter::build(*request.config->linux.seccomp)));
        if (filter->notifies())
            return make_error(ErrorKind::Unsupported, "exec: a container whose seccomp profile notifies a listener takes no exec yet");
    }
    auto program = TRY(find_executable(request.process));
    TRY(apply_limits(request.process));
    TRY(switch_user(request.process, true));
    TRY(finish_process(request.process));
    if (filter)
        TRY(filter->load());
    return sys::execve(program, request.process.args, request.process.env);
}

} // namespace

ErrorOr<int> exec_in_container(ExecRequest const& request)
{
    auto const& state = *request.state;
    if (request.process.terminal && request.console_socket.empty())
        return make_error("process.terminal is true: --console-socket is required to receive the terminal");
    // The container's own namespaces, by their /proc paths.
    Linux joined;
    for (auto const& ns : request.config->linux.namespaces)
        joined.namespaces.push_back({ ns.type, fmt::format("/proc/{}/ns/{}", state.pid, proc_name(ns.type)) });
    Fd console;
    if (!request.console_socket.empty())
        console = TRY(connect_unix(request.console_socket).map_error([](Error const& e) { return e.with_prefix("--console-socket"); }));
    Fd parent_end, child_end;
    TRY(sys::socketpair(AF_UNIX, SOCK_SEQPACKET, parent_end, child_end));
    TRY(join_namespaces(joined, true));
    pid_t pid = TRY(sys::clone_process(0));
    if (pid == 0) {
        parent_end.reset();
        auto result = exec_steps(request, joined, child_end.get(), console.get());
        (void)sync_send(child_end.get(), SyncKind::Failed, result.error().to_string());
        ::_exit(127);
    }
    child_end.reset();
    console.reset();
    auto fail = [&](Error const& error) -> ErrorOr<int> {
        (void)sys::kill(pid, SIGKILL);
        int status = 0;
        (void)sys::waitpid(pid, status, 0);
        return tl::unexpected(error);
    };
    auto cgroup = Cgroup::existing(state.cgroup);
    if (!cgroup)
        return fail(cgroup.error());
    if (auto added = cgroup->add_process(pid); !added)
        return fail(added.error());
    if (auto sent = sync_send(parent_end.get(), SyncKind::Go); !sent)
        return fail(sent.error());
    // The socket closes on execve (SOCK_CLOEXEC): end of file means the program runs.
    auto message = sync_receive(parent_end.get());
    if (message || message.error().kind() != ErrorKind::Disconnected)
        return fail(message ? Error::from_string("exec: unexpected message from the new process", ErrorKind::Internal) : message.error());
    if (!request.pid_file.empty())
        TRY(replace_file(std::filesystem::absolute(request.pid_file).string(), std::to_string(pid)));
    if (request.detach)
        return 0;
    int status = 0;
    TRY(sys::waitpid(pid, status, 0));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace kasou::container
