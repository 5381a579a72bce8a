#pragma once

// The containers this runtime knows, one directory each under --root: ROOT/ID/state.json (what
// create recorded), ROOT/ID/config.json (the bundle's configuration as it was at create, for delete's
// poststop hooks and cgroup), ROOT/ID/exec.fifo (present from create until start).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::container {

enum class Status { Creating, Created, Running, Paused, Stopped };

std::string_view status_name(Status status);

// What create records about a container. `pid` is 0 until the init exists; `start_time` (the
// init's start time in clock ticks since boot, /proc/PID/stat field 22) tells the init from a later
// process that reuses its pid.
struct ContainerState {
    std::string id;
    pid_t pid { 0 };
    u64 start_time { 0 };
    std::string bundle;
    std::string rootfs;
    std::string created; // RFC 3339
    std::string cgroup; // cgroup path relative to each hierarchy's root ("/kasou/ID")
    std::map<std::string, std::string> annotations;
    std::optional<u32> core_group; // the kasou core group org.kasou.cores reserved
    bool created_done { false }; // false while `create` runs (or after it was killed)
};

// The state directory under --root. IDs are checked (letters, digits, '_', '-', '.', not
// starting with '.'), so an ID never names a path outside the root.
class StateStore {
public:
    static ErrorOr<StateStore> open(std::string root);
    static ErrorOr<void> check_id(std::string const& id);

    // Creates ROOT/ID; AlreadyExists when a container of that ID exists.
    ErrorOr<void> claim(std::string const& id) const;
    // NotFound "container "ID" does not exist".
    ErrorOr<ContainerState> load(std::string const& id) const;
    ErrorOr<void> save(ContainerState const& state) const;
    ErrorOr<std::string> saved_config(std::string const& id) const;
    ErrorOr<void> save_config(std::string const& id, std::string const& text) const;
    // Removes ROOT/ID and everything in it.
    ErrorOr<void> remove(std::string const& id) const;
    ErrorOr<std::vector<std::string>> ids() const;

    std::string directory(std::string const& id) const { return m_root + "/" + id; }
    std::string fifo(std::string const& id) const { return directory(id) + "/exec.fifo"; }
    std::string const& root() const { return m_root; }

private:
    explicit StateStore(std::string root)
        : m_root(std::move(root))
    {
    }
    std::string m_root;
};

// Replaces path with text atomically (a temporary file renamed over it) but without fsync: the
// runtime's state and pid files describe processes, which a crash of the host ends anyway.
ErrorOr<void> replace_file(std::string const& path, std::string_view text);

// Start time of a process in clock ticks since boot; std::nullopt when it does not exist.
std::optional<u64> process_start_time(pid_t pid);
// Whether the process is a zombie or gone (its program has ended).
bool process_ended(pid_t pid, u64 start_time);

} // namespace kasou::container
