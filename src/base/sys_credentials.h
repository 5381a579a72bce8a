#pragma once

// System call wrappers: user and group IDs, capabilities, resource limits and other per-process
// attributes a container's init sets before it runs the container's program.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <string>
#include <sys/types.h>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::sys {

ErrorOr<void> setresuid(uid_t uid);
ErrorOr<void> setresgid(gid_t gid);
ErrorOr<void> setgroups(std::vector<gid_t> const& groups);
// prctl(2) with up to two arguments; `name` names the option in an error.
ErrorOr<int> prctl(int option, unsigned long argument, unsigned long argument2, char const* name);
// capset(2) on the calling thread: the three sets as 64-bit masks.
ErrorOr<void> capset(u64 effective, u64 permitted, u64 inheritable);
ErrorOr<void> setrlimit(int resource, u64 soft, u64 hard);
ErrorOr<void> setsid();
ErrorOr<void> dup2(int from, int to);
// execve(2) of an absolute path; returns only on failure.
ErrorOr<void> execve(std::string const& path, std::vector<std::string> const& argv, std::vector<std::string> const& env);

// keyctl(KEYCTL_JOIN_SESSION_KEYRING): a new session keyring of this name for the process.
ErrorOr<void> join_session_keyring(std::string const& name);

} // namespace kasou::sys
