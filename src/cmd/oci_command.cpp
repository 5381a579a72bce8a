// kasou oci: an OCI runtime with runc's command line, as containerd's runc shim drives it.

#include <cstdio>
#include <functional>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"
#include "cmd/commands.h"
#include "container/runtime.h"
#include "container/runtime_log.h"
#include "container/spec_template.h"

namespace kasou::cmd {

namespace {

struct OciOptions {
    std::string root { "/run/kasou-oci" };
    std::string log;
    std::string log_format { "text" };
    bool systemd_cgroup { false };
    bool debug { false };
    bool rootless_spec { false };
    std::string bundle { "." };
    container::CreateOptions create;
    bool detach { false };
    std::string id;
    std::string signal { "SIGTERM" };
    bool all { false };
    bool force { false };
    std::string format { "table" };
    bool quiet { false };
    std::string resources;
    bool stats { false };
    container::ExecOptions exec;
    std::string process_file;
};

std::string read_stdin()
{
    std::string text;
    char buffer[4096];
    for (;;) {
        auto got = sys::read(0, buffer, sizeof(buffer));
        if (!got || *got == 0)
            return text;
        text.append(buffer, *got);
    }
}

// Runs one operation with the runtime of the global options; an error is printed and logged.
int with_runtime(OciOptions const& options, std::function<ErrorOr<int>(container::Runtime&)> const& operation)
{
    auto log = container::RuntimeLog::open(options.log, options.log_format);
    if (!log)
        return fmt::print(stderr, "kasou oci: {}\n", log.error().to_string()), 2;
    log->set_verbose(options.debug);
    if (options.systemd_cgroup) {
        log->error("--systemd-cgroup: not supported: kasou manages cgroups through the cgroup file system itself");
        return 2;
    }
    auto store = container::StateStore::open(options.root);
    if (!store) {
        log->error(store.error().to_string());
        return 1;
    }
    container::Runtime runtime(std::move(*store), *log);
    auto result = operation(runtime);
    if (!result) {
        log->error(result.error().to_string());
        return 1;
    }
    return *result;
}

void add_create_options(CLI::App* command, OciOptions& options)
{
    command->add_option("-b,--bundle", options.create.bundle, "Bundle directory (config.json and the root)")->capture_default_str();
    command->add_option("--pid-file", options.create.pid_file, "Write the init's pid here");
    command->add_option("--console-socket", options.create.console_socket, "Unix socket that receives the terminal's master (SCM_RIGHTS)");
    command->add_flag("--no-pivot", options.create.no_pivot, "chroot into the root instead of pivot_root (for a root on a ramfs)");
    command->add_flag("--no-new-keyring", options.create.no_new_keyring, "Keep the caller's session keyring");
    command->add_option("id", options.create.id, "Container ID")->required();
}

int write_spec(OciOptions const& options)
{
    std::string path = options.bundle + "/config.json";
    struct stat st {};
    if (sys::stat(path, st))
        return fmt::print(stderr, "kasou oci spec: {} exists already\n", path), 1;
    auto text = container::default_spec(options.rootless_spec, ::getuid(), ::getgid());
    auto fd = sys::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (!fd)
        return fmt::print(stderr, "kasou oci spec: {}\n", fd.error().to_string()), 1;
    auto written = sys::write_exact(fd->get(), text.data(), text.size());
    if (!written)
        return fmt::print(stderr, "kasou oci spec: {}\n", written.error().to_string()), 1;
    return 0;
}

} // namespace

void add_oci_command(CLI::App& app, GlobalOptions const&, Action& action)
{
    auto options = std::make_shared<OciOptions>();
    auto* oci = app.add_subcommand("oci", "OCI runtime: containers from bundles, with runc's command line");
    oci->require_subcommand(1);
    oci->footer("Called as kasou-runc (a symbolic link to kasou), kasou takes runc's command line as is:\n"
                "  containerd: runtime io.containerd.runc.v2 with BinaryName = \"/usr/bin/kasou-runc\".\n"
                "Examples:\n"
                "  mkdir -p b/rootfs && cd b && kasou oci spec && kasou oci run demo\n"
                "  kasou oci --root /run/kasou-oci create --bundle b --pid-file b/pid demo && kasou oci start demo");
    oci->add_option("--root", options->root, "Directory of the containers' state")->capture_default_str();
    oci->add_option("--log", options->log, "Append the runtime's messages to this file");
    oci->add_option("--log-format", options->log_format, "text or json (JSON lines as containerd reads them)")
        ->capture_default_str();
    oci->add_flag("--systemd-cgroup", options->systemd_cgroup, "Refused: kasou manages cgroups itself");
    oci->add_flag("--debug", options->debug, "Print the runtime's informational messages on standard error too");

    auto* spec = oci->add_subcommand("spec", "Write a starting config.json into the bundle");
    spec->add_option("-b,--bundle", options->bundle, "Bundle directory")->capture_default_str();
    spec->add_flag("--rootless", options->rootless_spec, "A configuration for an unprivileged user (user namespace)");
    spec->callback([options, &action] { action = [options] { return write_spec(*options); }; });

    auto& o = *options;
    auto* create = oci->add_subcommand("create", "Create a container: its init waits for start");
    add_create_options(create, o);
    create->callback([options, &action] {
        action = [options] {
            return with_runtime(*options, [&](container::Runtime& runtime) -> ErrorOr<int> {
                TRY(runtime.create(options->create));
                return 0;
            });
        };
    });

    auto* run = oci->add_subcommand("run", "Create and start a container; wait for it unless --detach");
    add_create_options(run, o);
    run->add_flag("-d,--detach", o.detach, "Return once the program runs");
    run->callback([options, &action] {
        action = [options] {
            return with_runtime(*options, [&](container::Runtime& runtime) { return runtime.run(options->create, options->detach); });
        };
    });

    auto simple = [&](char const* name, char const* description, auto operation) {
        auto* command = oci->add_subcommand(name, description);
        command->add_option("id", o.id, "Container ID")->required();
        command->callback([options, &action, operation] {
            action = [options, operation] {
                return with_runtime(*options, [&](container::Runtime& runtime) -> ErrorOr<int> {
                    TRY(operation(runtime, *options));
                    return 0;
                });
            };
        });
        return command;
    };
    simple("start", "Run the program of a created container", [](container::Runtime& r, OciOptions const& o) { return r.start(o.id); });
    simple("state", "Print the OCI state of a container", [](container::Runtime& r, OciOptions const& o) -> ErrorOr<void> {
        fmt::print("{}\n", TRY(r.state(o.id)));
        return {};
    });
    auto* kill = simple("kill", "Send a signal (default SIGTERM) to the container's init, or --all its processes",
        [](container::Runtime& r, OciOptions const& o) -> ErrorOr<void> { return r.kill(o.id, TRY(container::parse_signal(o.signal)), o.all); });
    kill->add_option("signal", o.signal, "Signal number or name")->capture_default_str();
    kill->add_flag("-a,--all", o.all, "Every process of the container");
    auto* remove = simple("delete", "Delete a stopped (or created) container; --force kills a running one",
        [](container::Runtime& r, OciOptions const& o) { return r.remove(o.id, o.force); });
    remove->add_flag("-f,--force", o.force, "Kill the container first if it runs");
    simple("pause", "Freeze every process of the container", [](container::Runtime& r, OciOptions const& o) { return r.pause(o.id); });
    simple("resume", "Thaw a paused container", [](container::Runtime& r, OciOptions const& o) { return r.resume(o.id); });
    auto* update = simple("update", "Change the container's cgroup limits from a linux.resources document",
        [](container::Runtime& r, OciOptions const& o) -> ErrorOr<void> {
            std::string text = o.resources == "-" ? read_stdin() : TRY(sys::read_file(o.resources));
            return r.update(o.id, text);
        });
    update->add_option("-r,--resources", o.resources, "File with the linux.resources JSON, or - for standard input")->required();
    auto* ps = simple("ps", "List the container's processes", [](container::Runtime& r, OciOptions const& o) -> ErrorOr<void> {
        auto pids = TRY(r.processes(o.id));
        if (o.format == "json") {
            fmt::print("{}\n", nlohmann::json(pids).dump());
            return {};
        }
        fmt::print("PID     CMD\n");
        for (pid_t pid : pids) {
            auto comm = sys::read_file(fmt::format("/proc/{}/comm", pid));
            fmt::print("{:<7} {}", pid, comm ? *comm : std::string("?\n"));
        }
        return {};
    });
    ps->add_option("-f,--format", o.format, "table or json")->check(CLI::IsMember({ "table", "json" }))->capture_default_str();
    auto* events = simple("events", "Print the container's resource usage (--stats)", [](container::Runtime& r, OciOptions const& o) -> ErrorOr<void> {
        if (!o.stats)
            return make_error(ErrorKind::Unsupported, "events: only --stats is implemented (no event stream)");
        fmt::print("{}", TRY(r.stats(o.id)));
        return {};
    });
    events->add_flag("--stats", o.stats, "Print the statistics once and exit");

    auto* exec = oci->add_subcommand("exec", "Run one more process in a running container");
    exec->add_option("-p,--process", o.process_file, "A runtime-spec `process` document (- for standard input)");
    exec->add_option("--console-socket", o.exec.console_socket, "Unix socket that receives the terminal's master");
    exec->add_flag("-d,--detach", o.exec.detach, "Return once the process runs");
    exec->add_option("--pid-file", o.exec.pid_file, "Write the process's pid here");
    exec->add_flag("-t,--tty", o.exec.tty, "Give the process a terminal (with --console-socket)");
    exec->add_option("--cwd", o.exec.cwd, "Working directory in the container");
    exec->add_option("-e,--env", o.exec.env, "NAME=VALUE added to the environment")->take_all();
    exec->add_option("-u,--user", o.exec.user, "UID[:GID]");
    exec->add_option("id", o.id, "Container ID")->required();
    // Everything after the ID is the command, options of the command included ("sh -c ...").
    exec->prefix_command(true);
    exec->footer("Usage as runc's: kasou oci exec [OPTIONS] ID COMMAND [ARG...], or --process FILE ID");
    exec->callback([options, exec, &action] {
        options->exec.args = exec->remaining();
        action = [options] {
            return with_runtime(*options, [&](container::Runtime& runtime) -> ErrorOr<int> {
                if (!options->process_file.empty())
                    options->exec.process_json = options->process_file == "-" ? read_stdin() : TRY(sys::read_file(options->process_file));
                return runtime.exec(options->id, options->exec);
            });
        };
    });

    auto* list = oci->add_subcommand("list", "List the containers under --root");
    list->add_option("-f,--format", o.format, "table or json")->check(CLI::IsMember({ "table", "json" }))->capture_default_str();
    list->add_flag("-q,--quiet", o.quiet, "IDs only");
    list->callback([options, &action] {
        action = [options] {
            return with_runtime(*options, [&](container::Runtime& runtime) -> ErrorOr<int> {
                fmt::print("{}", TRY(runtime.list(options->format, options->quiet)));
                return 0;
            });
        };
    });

    auto* features = oci->add_subcommand("features", "Print what this runtime supports (runtime-spec features.md)");
    features->callback([&action] {
        action = [] {
            fmt::print("{}", container::features_document());
            return 0;
        };
    });
}

} // namespace kasou::cmd
