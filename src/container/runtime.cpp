#include "container/runtime.h"

#include <chrono>
#include <cstdio>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/sys_path.h"
#include "base/sys_process.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "container/cgroup.h"
#include "container/exec_process.h"
#include "container/config.h"
#include "container/hooks.h"
#include "container/init_process.h"
#include "container/namespaces.h"
#include "container/state_store.h"
#include "container/sync_channel.h"
#include "sched/cpu_set.h"

namespace kasou::container {

using Json = nlohmann::json;

namespace {

constexpr char const* OCI_VERSION = "1.2.0";

bool exists(std::string const& path)
{
    struct stat st {};
    return static_cast<bool>(sys::lstat(path, st));
}

// Undoes a create that did not finish: the init killed, its cgroup and state directory removed.
class CreateRollback {
public:
    CreateRollback(StateStore const& store, std::string id)
        : m_store(store)
        , m_id(std::move(id))
    {
    }
    ~CreateRollback()
    {
        if (m_committed)
            return;
        if (m_pid > 0) {
            (void)sys::kill(m_pid, SIGKILL);
            int status = 0;
            (void)sys::waitpid(m_pid, status, 0);
        }
        if (m_cgroup) {
            for (pid_t pid : m_cgroup->processes())
                (void)sys::kill(pid, SIGKILL);
            (void)m_cgroup->destroy();
        }
        if (!m_pid_file.empty())
            (void)sys::unlink(m_pid_file);
        (void)m_store.remove(m_id);
    }
    CreateRollback(CreateRollback const&) = delete;
    CreateRollback& operator=(CreateRollback const&) = delete;

    void set_cgroup(Cgroup cgroup) { m_cgroup = std::move(cgroup); }
    void set_pid(pid_t pid) { m_pid = pid; }
    void set_pid_file(std::string path) { m_pid_file = std::move(path); }
    void commit() { m_committed = true; }

private:
    StateStore const& m_store;
    std::string m_id;
    std::optional<Cgroup> m_cgroup;
    pid_t m_pid { 0 };
    std::string m_pid_file;
    bool m_committed { false };
};

ErrorOr<void> write_id_map(pid_t pid, char const* file, std::vector<IdMapping> const& mappings)
{
    std::string text;
    for (auto const& mapping : mappings)
        text += fmt::format("{} {} {}\n", mapping.container_id, mapping.host_id, mapping.size);
    auto fd = TRY(sys::open(fmt::format("/proc/{}/{}", pid, file), O_WRONLY | O_CLOEXEC));
    return sys::write_exact(fd.get(), text.data(), text.size()).map_error([&](Error const& error) {
        return error.with_prefix(fmt::format("linux.{}", file[0] == 'u' ? "uidMappings" : "gidMappings"));
    });
}

ErrorOr<std::string> absolute(std::string const& path, std::string_view what)
{
    std::error_code error;
    auto canonical = std::filesystem::canonical(path, error);
    if (error)
        return make_error(ErrorKind::NotFound, fmt::format("{} {}: {}", what, path, error.message()));
    return canonical.string();
}

ErrorOr<void> check_host_support(Config const& config)
{
    auto const& process = *config.process;
    if (!process.apparmor_profile.empty() && !exists("/sys/kernel/security/apparmor"))
        return make_error(ErrorKind::Unsupported, "process.apparmorProfile: this host has no AppArmor");
    if (!process.apparmor_profile.empty())
        return make_error(ErrorKind::Unsupported, "process.apparmorProfile: AppArmor profiles are not applied by kasou yet");
    if (!process.selinux_label.empty() || !config.linux.mount_label.empty())
        return make_error(ErrorKind::Unsupported, exists("/sys/fs/selinux") ? "process.selinuxLabel: SELinux labels are not applied by kasou yet"
                                                                           : "process.selinuxLabel: this host has no SELinux");
    if (!config.linux.find_namespace(NamespaceType::Mount))
        return make_error(ErrorKind::Unsupported, "linux.namespaces: kasou needs a mount namespace to build the container's root");
    if (!config.linux.time_offsets.empty())
        return make_error(ErrorKind::Unsupported, "linux.timeOffsets: time namespace offsets are not written by kasou yet");
    return {};
}

// The annotation org.kasou.cores names the container's core group: its cgroup's cpuset becomes
// that list of host CPUs, checked as `kasou run --cores LIST` checks it.
ErrorOr<void> apply_core_group(Config& config)
{
    auto it = config.annotations.find("org.kasou.cores");
    if (it == config.annotations.end())
        return {};
    if (it->second == "auto")
        return make_error(ErrorKind::Unsupported,
            "annotations.org.kasou.cores: \"auto\" needs a placement held for the container's lifetime, which kasou oci does not keep yet; give a CPU list");
    auto cpus = TRY(sched::CpuSet::parse_list(it->second).map_error([](Error const& e) {
        return e.with_prefix("annotations.org.kasou.cores");
    }));
    if (!config.linux.resources.cpus.empty())
        return make_error("annotations.org.kasou.cores: give either it or linux.resources.cpu.cpus, not both");
    config.linux.resources.cpus = cpus.to_list();
    return {};
}

std::string now_rfc3339()
{
    return fmt::format("{:%FT%T}Z", std::chrono::floor<std::chrono::nanoseconds>(std::chrono::system_clock::now()));
}

ErrorOr<Config> saved_config(StateStore const& store, std::string const& id)
{
    auto text = TRY(store.saved_config(id));
    return parse_config(text);
}

} // namespace

std::string oci_state_json(ContainerState const& state, Status status)
{
    Json json = {
        { "ociVersion", OCI_VERSION },
        { "id", state.id },
        { "status", status_name(status) },
        { "bundle", state.bundle },
        { "annotations", state.annotations },
    };
    if (status != Status::Stopped)
        json["pid"] = state.pid;
    return json.dump();
}

ErrorOr<int> parse_signal(std::string const& text)
{
    std::string name = text;
    for (auto& c : name)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (name.starts_with("SIG"))
        name = name.substr(3);
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
        int number = std::stoi(name.substr(0, 3));
        if (number > 0 && number < NSIG && name.size() <= 2)
            return number;
    }
    for (int number = 1; number < NSIG; ++number) {
        char const* abbreviation = ::sigabbrev_np(number);
        if (abbreviation && name == abbreviation)
            return number;
    }
    return make_error(fmt::format("\"{}\" is not a signal", text));
}

Status Runtime::status_of(ContainerState const& state) const
{
    if (state.pid <= 0 || process_ended(state.pid, state.start_time))
        return Status::Stopped;
    if (!state.created_done)
        return Status::Creating;
    if (exists(m_store.fifo(state.id)))
        return Status::Created;
    auto cgroup = Cgroup::existing(state.cgroup);
    if (cgroup && cgroup->frozen())
        return Status::Paused;
    return Status::Running;
}

ErrorOr<ContainerState> Runtime::load_checked(std::string const& id, std::initializer_list<Status> allowed, std::string_view operation)
{
    auto state = TRY(m_store.load(id));
    auto status = status_of(state);
    if (std::find(allowed.begin(), allowed.end(), status) == allowed.end())
        return make_error(ErrorKind::Busy, fmt::format("cannot {} container \"{}\": it is {}", operation, id, status_name(status)));
    return state;
}

ErrorOr<pid_t> Runtime::create(CreateOptions const& options)
{
    TRY(StateStore::check_id(options.id));
    auto bundle = TRY(absolute(options.bundle, "--bundle"));
    auto text = TRY(sys::read_file(bundle + "/config.json").map_error([&](Error const& error) {
        return error.with_prefix(fmt::format("{}/config.json", bundle));
    }));
    auto config = TRY(parse_config(text));
    if (!config.process)
        return make_error("process: required to create a container");
    TRY(check_host_support(config));
    auto const& process = *config.process;
    if (process.terminal && options.console_socket.empty())
        return make_error("process.terminal is true: --console-socket is required to receive the terminal");
    if (!process.terminal && !options.console_socket.empty())
        return make_error("--console-socket given, but process.terminal is false");
    std::string rootfs = config.root.path[0] == '/' ? config.root.path : bundle + "/" + config.root.path;
    rootfs = TRY(absolute(rootfs, "root.path"));
    struct stat st {};
    if (!sys::stat(rootfs, st) || !S_ISDIR(st.st_mode))
        return make_error(ErrorKind::NotFound, fmt::format("root.path: {} is not a directory", rootfs));

    TRY(apply_core_group(config));

    TRY(m_store.claim(options.id));
    CreateRollback rollback(m_store, options.id);
    ContainerState state;
    state.id = options.id;
    state.bundle = bundle;
    state.rootfs = rootfs;
    state.created = now_rfc3339();
    state.cgroup = cgroup_path_for(config.linux.cgroups_path, options.id);
    state.annotations = config.annotations;
    TRY(m_store.save_config(options.id, text));
    TRY(m_store.save(state));
    auto cgroup = TRY(Cgroup::create(state.cgroup, config.linux.resources));
    rollback.set_cgroup(cgroup);
    // The init opens it for writing after it took the container's user, whoever that is.
    TRY(sys::mkfifo(m_store.fifo(options.id), 0622));
    TRY(sys::chmod(m_store.fifo(options.id), 0622));
    auto state_dir = TRY(sys::open(m_store.directory(options.id), O_PATH | O_DIRECTORY | O_CLOEXEC));
    Fd console;
    if (!options.console_socket.empty())
        console = TRY(connect_unix(options.console_socket).map_error([](Error const& e) { return e.with_prefix("--console-socket"); }));
    Fd parent_end, child_end;
    TRY(sys::socketpair(AF_UNIX, SOCK_SEQPACKET, parent_end, child_end));

    auto const* user = config.linux.find_namespace(NamespaceType::User);
    InitPlan plan;
    plan.config = &config;
    plan.rootfs.config = &config;
    plan.rootfs.rootfs = rootfs;
    plan.rootfs.cgroup_directories = cgroup.directories();
    plan.rootfs.user_namespace = user != nullptr;
    plan.sync_fd = child_end.get();
    plan.state_dir_fd = state_dir.get();
    plan.console_fd = console.valid() ? console.get() : -1;
    plan.no_pivot = options.no_pivot;
    plan.new_user_namespace = user && user->path.empty();
    if (!options.no_new_keyring)
        plan.session_keyring = options.id;

    TRY(join_namespaces(config.linux, true));
    pid_t pid = TRY(sys::clone_process(new_namespace_flags(config.linux)));
    if (pid == 0) {
        parent_end.reset();
        run_init(plan);
    }
    rollback.set_pid(pid);
    child_end.reset();
    state_dir.reset();
    console.reset();
    if (plan.new_user_namespace) {
        TRY(write_id_map(pid, "uid_map", config.linux.uid_mappings));
        TRY(write_id_map(pid, "gid_map", config.linux.gid_mappings));
    }
    TRY(cgroup.add_process(pid));
    TRY(sync_send(parent_end.get(), SyncKind::Go));
    TRY(sync_expect(parent_end.get(), SyncKind::MountsDone));
    state.pid = pid;
    state.start_time = process_start_time(pid).value_or(0);
    auto hook_state = oci_state_json(state, Status::Creating);
    TRY(run_hooks(config.hooks.prestart, "prestart", hook_state));
    TRY(run_hooks(config.hooks.create_runtime, "createRuntime", hook_state));
    TRY(sync_send(parent_end.get(), SyncKind::HooksDone, oci_state_json(state, Status::Created)));
    TRY(sync_expect(parent_end.get(), SyncKind::Ready));
    state.created_done = true;
    TRY(m_store.save(state));
    if (!options.pid_file.empty()) {
        auto path = std::filesystem::absolute(options.pid_file).string();
        rollback.set_pid_file(path);
        TRY(replace_file(path, std::to_string(pid)).map_error([](Error const& e) { return e.with_prefix("--pid-file"); }));
    }
    TRY(sync_send(parent_end.get(), SyncKind::Commit));
    TRY(sync_expect(parent_end.get(), SyncKind::Committed));
    rollback.commit();
    m_log.info(fmt::format("container \"{}\" created, init pid {}", options.id, pid));
    return pid;
}

ErrorOr<void> Runtime::start(std::string const& id)
{
    auto state = TRY(load_checked(id, { Status::Created }, "start"));
    auto fifo = TRY(sys::open(m_store.fifo(id), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    for (;;) {
        pollfd entry { fifo.get(), POLLIN, 0 };
        TRY(sys::poll(&entry, 1, 20));
        if (entry.revents & POLLIN)
            break;
        if (process_ended(state.pid, state.start_time))
            return make_error(ErrorKind::Disconnected, fmt::format("container \"{}\": its init ended before start", id));
    }
    char byte = 0;
    TRY(sys::read(fifo.get(), &byte, 1));
    TRY(sys::unlink(m_store.fifo(id)));
    // End of file once the init's execve closed its end; "E" when the init failed before it.
    for (;;) {
        pollfd entry { fifo.get(), POLLIN, 0 };
        TRY(sys::poll(&entry, 1, -1));
        if (TRY(sys::read(fifo.get(), &byte, 1)) == 0)
            break;
        if (byte == 'E')
            return make_error(fmt::format("container \"{}\": its program did not start (see the init's message above)", id));
    }
    auto config = TRY(saved_config(m_store, id));
    auto hooks = run_hooks(config.hooks.poststart, "poststart", oci_state_json(state, Status::Running));
    if (!hooks) // runtime.md: a failed poststart hook is a warning; the container runs on
        m_log.warning(hooks.error().to_string());
    return {};
}

ErrorOr<int> Runtime::run(CreateOptions const& options, bool detach)
{
    pid_t pid = TRY(create(options));
    auto started = start(options.id);
    if (!started) {
        (void)remove(options.id, true);
        return tl::unexpected(started.error());
    }
    if (detach)
        return 0;
    int status = 0;
    TRY(sys::waitpid(pid, status, 0));
    TRY(remove(options.id, true));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ErrorOr<std::string> Runtime::state(std::string const& id)
{
    auto state = TRY(m_store.load(id));
    return Json::parse(oci_state_json(state, status_of(state))).dump(2);
}

ErrorOr<void> Runtime::kill(std::string const& id, int signal, bool all)
{
    auto state = TRY(load_checked(id, { Status::Created, Status::Running, Status::Paused }, "kill"));
    if (!all)
        return sys::kill(state.pid, signal);
    auto cgroup = TRY(Cgroup::existing(state.cgroup));
    for (pid_t pid : cgroup.processes())
        (void)sys::kill(pid, signal); // a process may exit meanwhile
    return {};
}

ErrorOr<void> Runtime::remove(std::string const& id, bool force)
{
    auto state = TRY(m_store.load(id));
    auto status = status_of(state);
    if (!force && (status == Status::Running || status == Status::Paused))
        return make_error(ErrorKind::Busy, fmt::format("container \"{}\" is {}: stop it first, or use --force", id, status_name(status)));
    if (!state.cgroup.empty()) {
        auto cgroup = TRY(Cgroup::existing(state.cgroup));
        if (!process_ended(state.pid, state.start_time))
            (void)sys::kill(state.pid, SIGKILL);
        for (int round = 0; round < 3; ++round) {
            for (pid_t pid : cgroup.processes())
                (void)sys::kill(pid, SIGKILL);
        }
        if (cgroup.frozen())
            TRY(cgroup.freeze(false));
        TRY(cgroup.destroy().map_error([&](Error const& e) { return e.with_prefix(fmt::format("container \"{}\": cgroup", id)); }));
    }
    auto config = saved_config(m_store, id);
    TRY(m_store.remove(id));
    if (config && state.created_done) {
        auto hooks = run_hooks(config->hooks.poststop, "poststop", oci_state_json(state, Status::Stopped));
        if (!hooks) // runtime.md: a failed poststop hook is a warning; the container is gone
            m_log.warning(hooks.error().to_string());
    }
    return {};
}

ErrorOr<std::string> Runtime::list(std::string const& format, bool quiet)
{
    std::string out;
    Json array = Json::array();
    if (format == "table" && !quiet)
        out = fmt::format("{:<20} {:<8} {:<10} {:<40} {:<30}\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
    for (auto const& id : TRY(m_store.ids())) {
        auto state = m_store.load(id);
        if (!state)
            continue;
        auto status = status_of(*state);
        pid_t pid = status == Status::Stopped ? 0 : state->pid;
        if (quiet)
            out += id + "\n";
        else if (format == "table")
            out += fmt::format("{:<20} {:<8} {:<10} {:<40} {:<30}\n", id, pid, status_name(status), state->bundle, state->created);
        else
            array.push_back({ { "ociVersion", OCI_VERSION }, { "id", id }, { "pid", pid }, { "status", status_name(status) },
                { "bundle", state->bundle }, { "rootfs", state->rootfs }, { "created", state->created },
                { "annotations", state->annotations }, { "owner", "" } });
    }
    if (format == "json" && !quiet)
        return array.dump() + "\n";
    return out;
}

ErrorOr<std::vector<pid_t>> Runtime::processes(std::string const& id)
{
    auto state = TRY(m_store.load(id));
    return TRY(Cgroup::existing(state.cgroup)).processes();
}

ErrorOr<void> Runtime::pause(std::string const& id)
{
    auto state = TRY(load_checked(id, { Status::Running }, "pause"));
    return TRY(Cgroup::existing(state.cgroup)).freeze(true);
}

ErrorOr<void> Runtime::resume(std::string const& id)
{
    auto state = TRY(load_checked(id, { Status::Paused }, "resume"));
    return TRY(Cgroup::existing(state.cgroup)).freeze(false);
}

ErrorOr<void> Runtime::update(std::string const& id, std::string const& resources_json)
{
    auto state = TRY(load_checked(id, { Status::Created, Status::Running, Status::Paused }, "update"));
    auto resources = TRY(parse_resources(resources_json));
    return TRY(Cgroup::existing(state.cgroup)).apply(resources);
}

ErrorOr<int> Runtime::exec(std::string const& id, ExecOptions const& options)
{
    auto state = TRY(load_checked(id, { Status::Running }, "exec in"));
    auto config = TRY(saved_config(m_store, id));
    ExecRequest request;
    request.config = &config;
    request.state = &state;
    if (!options.process_json.empty()) {
        if (!options.args.empty())
            return make_error("exec: give either --process or a command, not both");
        request.process = TRY(parse_process(options.process_json));
    } else {
        if (options.args.empty())
            return make_error("exec: a command (or --process FILE) is required");
        request.process = *config.process;
        request.process.args = options.args;
        request.process.env.insert(request.process.env.end(), options.env.begin(), options.env.end());
        if (!options.cwd.empty())
            request.process.cwd = options.cwd;
        request.process.terminal = options.tty;
        if (!options.user.empty()) {
            unsigned uid = 0, gid = 0;
            char extra = 0;
            int fields = std::sscanf(options.user.c_str(), "%u:%u%c", &uid, &gid, &extra);
            if (fields < 1 || fields > 2 || (fields == 1 && options.user.find(':') != std::string::npos))
                return make_error(fmt::format("--user {}: expected UID or UID:GID", options.user));
            request.process.user.uid = uid;
            request.process.user.gid = fields == 2 ? gid : 0;
        }
    }
    request.console_socket = options.console_socket;
    request.pid_file = options.pid_file;
    request.detach = options.detach;
    return exec_in_container(request);
}

ErrorOr<std::string> Runtime::stats(std::string const& id)
{
    auto state = TRY(load_checked(id, { Status::Created, Status::Running, Status::Paused }, "read the statistics of"));
    auto cgroup = TRY(Cgroup::existing(state.cgroup));
    Json event = { { "type", "stats" }, { "id", id }, { "data", cgroup.stats() } };
    return event.dump() + "\n";
}

} // namespace kasou::container
