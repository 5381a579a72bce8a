#include "base/sys_namespace.h"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_retry.h"

namespace kasou::sys {

ErrorOr<pid_t> clone_process(u64 flags)
{
    clone_args args {};
    args.flags = flags;
    args.exit_signal = SIGCHLD;
    long pid = ::syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0)
        return make_errno_error(errno, "clone3");
    return static_cast<pid_t>(pid);
}

ErrorOr<void> unshare(int flags)
{
    if (::unshare(flags) < 0)
        return make_errno_error(errno, "unshare");
    return {};
}

ErrorOr<void> setns(int fd, int type)
{
    if (::setns(fd, type) < 0)
        return make_errno_error(errno, "setns");
    return {};
}

ErrorOr<void> mount(std::string const& source, std::string const& target, std::string const& type, unsigned long flags,
    std::string const& data)
{
    if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
            data.empty() ? nullptr : data.c_str())
        < 0)
        return make_errno_error(errno, fmt::format("mount {}", target));
    return {};
}

ErrorOr<void> umount(std::string const& target, int flags)
{
    if (::umount2(target.c_str(), flags) < 0)
        return make_errno_error(errno, fmt::format("umount {}", target));
    return {};
}

ErrorOr<void> pivot_root(std::string const& new_root, std::string const& put_old)
{
    if (::syscall(SYS_pivot_root, new_root.c_str(), put_old.c_str()) < 0)
        return make_errno_error(errno, "pivot_root");
    return {};
}

ErrorOr<void> chroot(std::string const& path)
{
    if (::chroot(path.c_str()) < 0)
        return make_errno_error(errno, fmt::format("chroot {}", path));
    return {};
}

ErrorOr<void> chdir(std::string const& path)
{
    if (::chdir(path.c_str()) < 0)
        return make_errno_error(errno, fmt::format("chdir {}", path));
    return {};
}

ErrorOr<void> sethostname(std::string const& name)
{
    if (::sethostname(name.data(), name.size()) < 0)
        return make_errno_error(errno, "sethostname");
    return {};
}

ErrorOr<void> setdomainname(std::string const& name)
{
    if (::setdomainname(name.data(), name.size()) < 0)
        return make_errno_error(errno, "setdomainname");
    return {};
}

ErrorOr<void> mknod(std::string const& path, mode_t mode, dev_t device)
{
    if (::mknod(path.c_str(), mode, device) < 0)
        return make_errno_error(errno, fmt::format("mknod {}", path));
    return {};
}

ErrorOr<void> mkfifo(std::string const& path, mode_t mode)
{
    if (::mkfifo(path.c_str(), mode) < 0)
        return make_errno_error(errno, fmt::format("mkfifo {}", path));
    return {};
}

ErrorOr<void> symlink(std::string const& target, std::string const& path)
{
    if (::symlink(target.c_str(), path.c_str()) < 0)
        return make_errno_error(errno, fmt::format("symlink {}", path));
    return {};
}

ErrorOr<std::string> readlink(std::string const& path)
{
    char buffer[4096];
    ssize_t length = ::readlink(path.c_str(), buffer, sizeof(buffer));
    if (length < 0)
        return make_errno_error(errno, fmt::format("readlink {}", path));
    return std::string(buffer, static_cast<size_t>(length));
}

ErrorOr<void> rmdir(std::string const& path)
{
    if (::rmdir(path.c_str()) < 0)
        return make_errno_error(errno, fmt::format("rmdir {}", path));
    return {};
}

ErrorOr<void> mkdir(std::string const& path, mode_t mode)
{
    if (::mkdir(path.c_str(), mode) < 0)
        return make_errno_error(errno, fmt::format("mkdir {}", path));
    return {};
}

ErrorOr<void> chmod(std::string const& path, mode_t mode)
{
    if (::chmod(path.c_str(), mode) < 0)
        return make_errno_error(errno, fmt::format("chmod {}", path));
    return {};
}

ErrorOr<void> chown(std::string const& path, uid_t uid, gid_t gid)
{
    if (::chown(path.c_str(), uid, gid) < 0)
        return make_errno_error(errno, fmt::format("chown {}", path));
    return {};
}

ErrorOr<Fd> openat(int directory, std::string const& path, int flags, mode_t mode)
{
    int fd = detail::retry_on_eintr([&] { return ::openat(directory, path.c_str(), flags | O_CLOEXEC, mode); });
    if (fd < 0)
        return make_errno_error(errno, fmt::format("open {}", path));
    return Fd(fd);
}

} // namespace kasou::sys
