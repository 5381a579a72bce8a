#pragma once

// System call wrappers: child processes.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <string>
#include <sys/types.h>
#include <vector>

#include "base/error.h"

namespace kasou::sys {

// Runs argv[0] (looked up in PATH) with argv and waits for it; returns its exit status (128 + signal
// number when it was killed).
ErrorOr<int> spawn_and_wait(std::vector<std::string> const& argv);

// Starts the program at path argv[0] as a daemon: in a session of its own, not a child of this
// process (the intermediate process exits at once and is reaped here, so the daemon belongs to
// init), stdin and stdout on /dev/null, stderr appended to log_path, and descriptor `inherit`
// passed on under its number (every other descriptor is closed on exec as usual). Returns once
// the daemon is forked; whether it then runs is for the caller to learn (e.g. through `inherit`).
ErrorOr<void> spawn_daemon(std::vector<std::string> const& argv, std::string const& log_path, int inherit);
// waitpid(2); returns the pid waited for (0 with WNOHANG when it has not changed state) and its
// raw status in `status`.
ErrorOr<pid_t> waitpid(pid_t pid, int& status, int options);
ErrorOr<void> kill(pid_t pid, int signal);
// Whether a process with this pid exists (kill with signal 0; EPERM counts as existing).
bool process_exists(pid_t pid);

} // namespace kasou::sys
