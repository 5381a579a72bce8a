#pragma once

// System call wrappers: namespaces, mounts and the root directory (for the OCI runtime).
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <string>
#include <sys/types.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

namespace kasou::sys {

// clone3 with fork semantics (the child returns 0 and runs on a copy of the caller's stack):
// `flags` are CLONE_NEW* flags; the child's exit is signalled with SIGCHLD.
ErrorOr<pid_t> clone_process(u64 flags);
ErrorOr<void> unshare(int flags);
ErrorOr<void> setns(int fd, int type);
// mount(2); an error names the target ("mount /proc").
ErrorOr<void> mount(std::string const& source, std::string const& target, std::string const& type, unsigned long flags,
    std::string const& data);
ErrorOr<void> umount(std::string const& target, int flags);
ErrorOr<void> pivot_root(std::string const& new_root, std::string const& put_old);
ErrorOr<void> chroot(std::string const& path);
ErrorOr<void> chdir(std::string const& path);
ErrorOr<void> sethostname(std::string const& name);
ErrorOr<void> setdomainname(std::string const& name);
ErrorOr<void> mknod(std::string const& path, mode_t mode, dev_t device);
ErrorOr<void> mkfifo(std::string const& path, mode_t mode);
ErrorOr<void> symlink(std::string const& target, std::string const& path);
// readlink(2) of a symbolic link; an error when path is none.
ErrorOr<std::string> readlink(std::string const& path);
ErrorOr<void> rmdir(std::string const& path);
ErrorOr<void> mkdir(std::string const& path, mode_t mode);
ErrorOr<void> chmod(std::string const& path, mode_t mode);
ErrorOr<void> chown(std::string const& path, uid_t uid, gid_t gid);
// openat(2) relative to a directory descriptor.
ErrorOr<Fd> openat(int directory, std::string const& path, int flags, mode_t mode = 0);

} // namespace kasou::sys
