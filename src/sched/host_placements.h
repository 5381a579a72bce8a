#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "base/error.h"
#include "base/types.h"
#include "sched/cpu_set.h"

namespace kasou::sched {

// A process as the placement record names it: its pid and its start time (clock ticks since boot,
// field 22 of /proc/PID/stat), so that a pid the kernel has given to a new process since is not
// taken for the one that wrote the record.
struct ProcessIdentity {
    i32 pid { 0 };
    u64 start_time { 0 };

    static ProcessIdentity self();
    // nullopt when no such process runs (a zombie counts as gone: it holds no CPUs).
    static std::optional<ProcessIdentity> of(i32 pid);
    bool operator==(ProcessIdentity const&) const = default;
};

// One process's entry in the record: the host CPUs its core groups hold.
struct PlacementEntry {
    ProcessIdentity process;
    CpuSet cpus;
};

// The host-wide record of which host CPUs the kasou processes of one state directory hold, so that
// two `kasou run --cores auto` do not pick the same CPUs. STATE_DIR/cores/PID.json holds one
// process's entry; every change happens under an exclusive flock on STATE_DIR/cores/cores.lock, and
// each file is replaced atomically (write_file_atomically). Crash safety needs no clean-up: an entry
// whose process is gone (no such pid, a zombie, or a pid reused by a process that started at
// another time) is stale, and whoever takes the lock next removes it. An entry that cannot be read
// while its process lives is an error naming the file; one of a dead process is removed unread.
// Move-only; the destructor removes this process's entry.
class HostPlacements {
public:
    // Creates STATE_DIR/cores (state_dir must be absolute). owner is whom this object's entry
    // belongs to: the calling process, unless a test stands in for another one.
    static ErrorOr<HostPlacements> open(std::string const& state_dir, ProcessIdentity owner = ProcessIdentity::self());
    HostPlacements(HostPlacements&&) noexcept;
    HostPlacements& operator=(HostPlacements&&) noexcept;
    ~HostPlacements();

    // Under the lock: removes stale entries, asks choose for this process's CPUs given the other
    // live processes' entries, and records the answer (an empty set removes the entry). Nothing is
    // recorded when choose fails.
    ErrorOr<void> update(std::function<ErrorOr<CpuSet>(std::vector<PlacementEntry> const& others)> const& choose);
    // Every live entry, this process's included, by pid (stale ones are removed on the way).
    ErrorOr<std::vector<PlacementEntry>> list();

    std::string const& directory() const { return m_directory; }

private:
    HostPlacements(std::string directory, ProcessIdentity owner);
    ErrorOr<std::vector<PlacementEntry>> live_entries_locked();
    std::string entry_path(i32 pid) const;
    void remove_own_entry();

    std::string m_directory; // STATE_DIR/cores; empty once moved from
    ProcessIdentity m_owner;
};

} // namespace kasou::sched
