#pragma once

// The attributes of config.json's `process` a container's init (or an exec'd process) takes on
// before it runs the program: resource limits, OOM score, user and groups, the five capability
// sets, no_new_privs, umask, working directory; and the program's path looked up in its own PATH.

#include <string>

#include "base/error.h"
#include "container/config.h"

namespace kasou::container {

// process.args[0] as execve wants it: a path with a '/' as is, a bare name searched in the PATH of
// process.env (a default PATH when it has none). Looked up in the caller's root directory.
ErrorOr<std::string> find_executable(Process const& process);
// rlimits and oomScoreAdj; while still privileged.
ErrorOr<void> apply_limits(Process const& process);
// Groups, GID, UID and capabilities, in the order that keeps the needed privileges until the end.
// `set_groups`: false in a user namespace whose setgroups is denied.
ErrorOr<void> switch_user(Process const& process, bool set_groups);
// noNewPrivileges, umask and cwd: the last steps before the program (and seccomp) run.
ErrorOr<void> finish_process(Process const& process);

} // namespace kasou::container
