#pragma once

// System call wrappers: names in the file system (stat, unlink, rename, directories).
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <string>
#include <sys/types.h>

#include "base/error.h"

struct stat;

namespace kasou::sys {

ErrorOr<void> unlink(std::string const& path);
ErrorOr<void> lstat(std::string const& path, struct stat& out);
// stat(2): follows symbolic links.
ErrorOr<void> stat(std::string const& path, struct stat& out);
// Creates a fresh directory from a mkdtemp template ("/tmp/kasou-XXXXXX") and returns its path.
ErrorOr<std::string> make_temp_dir(std::string template_path);
ErrorOr<void> rename(std::string const& from, std::string const& to);
// Swaps two existing paths atomically (renameat2 RENAME_EXCHANGE).
ErrorOr<void> rename_exchange(std::string const& a, std::string const& b);
// Creates the directory and its missing parents; an existing directory is fine.
ErrorOr<void> mkdir_all(std::string const& path, mode_t mode);

// statfs(2): the type of the file system path is on (f_type, e.g. CGROUP2_SUPER_MAGIC).
ErrorOr<long> file_system_type(std::string const& path);

} // namespace kasou::sys
