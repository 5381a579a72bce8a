#include "container/init_process.h"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/sys_credentials.h"
#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/try.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/namespaces.h"
#include "container/process_setup.h"
#include "container/seccomp_filter.h"
#include "container/sync_channel.h"

namespace kasou::container {

namespace {

// The containerProcessState document a seccomp listener receives with the descriptor.
std::string process_state_json(Config const& config, std::string const& state)
{
    auto parsed = nlohmann::json::parse(state, nullptr, false);
    nlohmann::json document = {
        { "ociVersion", "1.2.0" },
        { "fds", { "seccompFd" } },
        { "pid", parsed.is_object() ? parsed.value("pid", 0) : 0 },
        { "metadata", config.linux.seccomp->listener_metadata },
        { "state", parsed },
    };
    return document.dump();
}

// Everything up to the program's execve, which returns only on failure.
ErrorOr<void> init_steps(InitPlan const& plan, Fd& fifo)
{
    auto const& config = *plan.config;
    auto const& process = *config.process;
    // Until create commits, the init dies with it: a killed create leaves no orphan behind.
    TRY(sys::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, "prctl(PR_SET_PDEATHSIG)"));
    TRY(sync_expect(plan.sync_fd, SyncKind::Go));
    TRY(join_namespaces(config.linux, false));
    if (plan.new_user_namespace) {
        // Become the namespace's root, so files made here belong to a mapped ID.
        TRY(sys::setresgid(0));
        TRY(sys::setresuid(0));
    }
    if (!plan.session_keyring.empty()) {
        auto joined = sys::join_session_keyring(plan.session_keyring);
        // Kernels without keyrings, or a user namespace that may not make one, go without.
        if (!joined && joined.error().code() != ENOSYS && joined.error().code() != EACCES)
            return joined;
    }
    if (!config.hostname.empty())
        TRY(sys::sethostname(config.hostname).map_error([](Error const& e) { return e.with_prefix("hostname"); }));
    if (!config.domainname.empty())
        TRY(sys::setdomainname(config.domainname).map_error([](Error const& e) { return e.with_prefix("domainname"); }));
    TRY(prepare_rootfs(plan.rootfs));
    TRY(sync_send(plan.sync_fd, SyncKind::MountsDone));
    auto state = TRY(sync_expect(plan.sync_fd, SyncKind::HooksDone));
    TRY(run_hooks(config.hooks.create_container, "createContainer", state));
    std::optional<SeccompFilter> filter;
    if (config.linux.seccomp) {
        filter.emplace(TRY(SeccompFilter::build(*config.linux.seccomp)));
        if (filter->notifies())
            TRY(filter->connect_listener(config.linux.seccomp->listener_path));
    }
    TRY(enter_rootfs(plan.rootfs, plan.no_pivot));
    if (process.terminal)
        TRY(attach_console(plan.console_fd, process));
    if (plan.console_fd >= 0)
        ::close(plan.console_fd);
    auto program = TRY(find_executable(process));
    TRY(apply_limits(process));
    TRY(switch_user(process, true));
    TRY(finish_process(process));
    // A change of credentials cleared the parent-death signal; set it again until the commit.
    TRY(sys::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, "prctl(PR_SET_PDEATHSIG)"));
    TRY(sync_send(plan.sync_fd, SyncKind::Ready));
    TRY(sync_expect(plan.sync_fd, SyncKind::Commit));
    TRY(sys::prctl(PR_SET_PDEATHSIG, 0, 0, "prctl(PR_SET_PDEATHSIG)"));
    TRY(sync_send(plan.sync_fd, SyncKind::Committed));
    ::close(plan.sync_fd);

    // Blocks until `start` opens the FIFO for reading. The descriptor stays open until execve
    // closes it (O_CLOEXEC): `start` waits for that end of file, so poststart hooks run after the
    // startContainer hooks and once the program runs.
    fifo = TRY(sys::openat(plan.state_dir_fd, "exec.fifo", O_WRONLY));
    TRY(sys::write_exact(fifo.get(), "0", 1));
    ::close(plan.state_dir_fd);
    TRY(run_hooks(config.hooks.start_container, "startContainer", state));
    if (filter)
        TRY(filter->load(process_state_json(config, state)));
    return sys::execve(program, process.args, process.env);
}

} // namespace

void run_init(InitPlan const& plan)
{
    Fd fifo;
    auto result = init_steps(plan, fifo);
    // After start: tell it the program will not run ("E" after the "0" it read).
    if (fifo.valid())
        (void)sys::write_exact(fifo.get(), "E", 1);
    // The sync socket is closed once create has committed; then standard error is all there is.
    auto text = result.error().to_string();
    if (!sync_send(plan.sync_fd, SyncKind::Failed, text))
        fmt::print(stderr, "kasou oci: container init: {}\n", text);
    ::_exit(1);
}

} // namespace kasou::container
