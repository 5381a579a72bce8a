#pragma once

// The OCI runtime's operations (runtime-spec runtime.md "Operations", with runc's additions), one
// function per command of `kasou oci`. Each returns an error naming what failed; an operation that
// fails leaves nothing behind it created.

#include <string>
#include <vector>

#include "base/error.h"
#include "container/runtime_log.h"
#include "container/state_store.h"

namespace kasou::container {

struct CreateOptions {
    std::string id;
    std::string bundle { "." };
    std::string pid_file;
    std::string console_socket;
    bool no_pivot { false };
    bool no_new_keyring { false };
};

struct ExecOptions {
    std::string process_json;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd;
    std::string user; // "UID[:GID]"
    bool tty { false };
    std::string console_socket;
    std::string pid_file;
    bool detach { false };
};

// The runtime with its state root and log; commands are its member functions.
class Runtime {
public:
    Runtime(StateStore store, RuntimeLog const& log)
        : m_store(std::move(store))
        , m_log(log)
    {
    }

    // create: the container's init waits on its exec FIFO; the init's pid is returned. The init is
    // not this process's child for long: this process exits, and the init goes to the nearest
    // child subreaper (containerd's shim) or to the host's init.
    ErrorOr<pid_t> create(CreateOptions const& options);
    ErrorOr<void> start(std::string const& id);
    // create + start; without `detach`, waits for the program and returns its exit status after
    // deleting the container.
    ErrorOr<int> run(CreateOptions const& options, bool detach);
    // The OCI state document (runtime.md "State").
    ErrorOr<std::string> state(std::string const& id);
    ErrorOr<void> kill(std::string const& id, int signal, bool all);
    ErrorOr<void> remove(std::string const& id, bool force);
    // `list`: format "table" or "json".
    ErrorOr<std::string> list(std::string const& format, bool quiet);
    ErrorOr<std::vector<pid_t>> processes(std::string const& id);
    ErrorOr<void> pause(std::string const& id);
    ErrorOr<void> resume(std::string const& id);
    // `update --resources`: the text of a linux.resources document.
    ErrorOr<void> update(std::string const& id, std::string const& resources_json);
    // `exec`: the process of options.process_json (--process FILE), or the container's own process
    // with the command line's args, env, cwd, terminal and user.
    ErrorOr<int> exec(std::string const& id, ExecOptions const& options);
    // One `events --stats` document.
    ErrorOr<std::string> stats(std::string const& id);

    // The status of a recorded container, read from the kernel now.
    Status status_of(ContainerState const& state) const;

private:
    ErrorOr<ContainerState> load_checked(std::string const& id, std::initializer_list<Status> allowed, std::string_view operation);

    StateStore m_store;
    RuntimeLog const& m_log;
};

// The OCI state document of a container.
std::string oci_state_json(ContainerState const& state, Status status);
// A signal given as a number, "KILL" or "SIGKILL".
ErrorOr<int> parse_signal(std::string const& text);

} // namespace kasou::container
