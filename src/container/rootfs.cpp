#include "container/rootfs.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/sys_path.h"
#include "base/try.h"
#include "container/mount_options.h"

namespace kasou::container {

namespace {

bool is_directory(std::string const& path)
{
    struct stat st {};
    return sys::stat(path, st) && S_ISDIR(st.st_mode);
}

bool exists(std::string const& path)
{
    struct stat st {};
    return static_cast<bool>(sys::lstat(path, st));
}

// Makes an empty file at path (and its parents) to bind a file over.
ErrorOr<void> make_file(std::string const& path)
{
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0)
        TRY(sys::mkdir_all(path.substr(0, slash), 0755));
    if (exists(path))
        return {};
    TRY(sys::open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    return {};
}

ErrorOr<void> mount_cgroup(RootfsPlan const& plan, std::string const& target, MountOptions const& options)
{
    // The container sees its own cgroup as the root of each hierarchy: a tmpfs holding a bind of
    // the container's directory per controller (or the one v2 directory).
    if (plan.cgroup_directories.size() == 1) {
        TRY(sys::mount(plan.cgroup_directories[0], target, "", MS_BIND, ""));
        return sys::mount("", target, "", MS_BIND | MS_REMOUNT | options.flags, "");
    }
    TRY(sys::mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755"));
    for (auto const& directory : plan.cgroup_directories) {
        // /sys/fs/cgroup/<controller>/<path>: the controller's name is the component after the mount root.
        auto name = directory.substr(std::string("/sys/fs/cgroup/").size());
        name = name.substr(0, name.find('/'));
        std::string dest = target + "/" + name;
        TRY(sys::mkdir_all(dest, 0755));
        TRY(sys::mount(directory, dest, "", MS_BIND, ""));
        TRY(sys::mount("", dest, "", MS_BIND | MS_REMOUNT | options.flags, ""));
    }
    if (options.flags & MS_RDONLY)
        TRY(sys::mount("", target, "", MS_REMOUNT | options.flags, "mode=755"));
    return {};
}

ErrorOr<void> mount_one(RootfsPlan const& plan, Mount const& mount, size_t index)
{
    auto options = parse_mount_options(mount.options);
    auto target = TRY(resolve_in_root(plan.rootfs, mount.destination));
    auto prefix = [&](Error const& error) { return error.with_prefix(fmt::format("mounts[{}] ({})", index, mount.destination)); };
    if (options.bind || mount.type == "bind") {
        if (mount.source.empty())
            return make_error(fmt::format("mounts[{}].source: a bind mount needs a source", index));
        struct stat st {};
        TRY(sys::stat(mount.source, st).map_error(prefix));
        if (S_ISDIR(st.st_mode))
            TRY(sys::mkdir_all(target, 0755).map_error(prefix));
        else
            TRY(make_file(target).map_error(prefix));
        TRY(sys::mount(mount.source, target, "", MS_BIND | (options.recursive ? MS_REC : 0), "").map_error(prefix));
        unsigned long remount = options.flags & ~MS_REMOUNT;
        if (remount)
            TRY(sys::mount("", target, "", MS_BIND | MS_REMOUNT | remount, "").map_error(prefix));
    } else {
        TRY(sys::mkdir_all(target, 0755).map_error(prefix));
        if (mount.type == "cgroup" || mount.type == "cgroup2")
            TRY(mount_cgroup(plan, target, options).map_error(prefix));
        else
            TRY(sys::mount(mount.source.empty() ? mount.type : mount.source, target, mount.type, options.flags, options.data)
                    .map_error(prefix));
    }
    if (options.propagation)
        TRY(sys::mount("", target, "", options.propagation, "").map_error(prefix));
    return {};
}

ErrorOr<void> make_device(RootfsPlan const& plan, Device const& device)
{
    auto target = TRY(resolve_in_root(plan.rootfs, device.path));
    if (exists(target))
        return {};
    if (plan.user_namespace) {
        // No mknod in a user namespace: bind the host's node instead.
        TRY(make_file(target));
        return sys::mount(device.path, target, "", MS_BIND, "");
    }
    auto slash = target.rfind('/');
    TRY(sys::mkdir_all(target.substr(0, slash), 0755));
    mode_t type = device.type == 'b' ? S_IFBLK : device.type == 'p' ? S_IFIFO : S_IFCHR;
    TRY(sys::mknod(target, type, makedev(device.major, device.minor)));
    TRY(sys::chmod(target, device.file_mode.value_or(0666) & 07777)); // mknod's mode went through the umask
    if (device.uid || device.gid)
        TRY(sys::chown(target, device.uid.value_or(0), device.gid.value_or(0)));
    return {};
}

ErrorOr<void> make_devices(RootfsPlan const& plan)
{
    // runtime-spec config-linux.md "Default Devices".
    Device const defaults[] = {
        { 'c', "/dev/null", 1, 3, 0666, {}, {} },
        { 'c', "/dev/zero", 1, 5, 0666, {}, {} },
        { 'c', "/dev/full", 1, 7, 0666, {}, {} },
        { 'c', "/dev/random", 1, 8, 0666, {}, {} },
        { 'c', "/dev/urandom", 1, 9, 0666, {}, {} },
        { 'c', "/dev/tty", 5, 0, 0666, {}, {} },
    };
    for (auto const& device : defaults)
        TRY(make_device(plan, device).map_error([&](Error const& error) { return error.with_prefix(device.path); }));
    for (size_t i = 0; i < plan.config->linux.devices.size(); ++i) {
        TRY(make_device(plan, plan.config->linux.devices[i]).map_error([&](Error const& error) {
            return error.with_prefix(fmt::format("linux.devices[{}]", i));
        }));
    }
    std::pair<char const*, char const*> const links[] = {
        { "/proc/self/fd", "/dev/fd" },
        { "/proc/self/fd/0", "/dev/stdin" },
        { "/proc/self/fd/1", "/dev/stdout" },
        { "/proc/self/fd/2", "/dev/stderr" },
    };
    for (auto const& [target, name] : links) {
        auto path = TRY(resolve_in_root(plan.rootfs, name));
        if (!exists(path))
            TRY(sys::symlink(target, path));
    }
    auto ptmx = TRY(resolve_in_root(plan.rootfs, "/dev/ptmx"));
    if (is_directory(plan.rootfs + "/dev/pts") && exists(plan.rootfs + "/dev/pts/ptmx")) {
        if (exists(ptmx))
            TRY(sys::unlink(ptmx));
        TRY(sys::symlink("pts/ptmx", ptmx));
    }
    return {};
}

ErrorOr<void> write_sysctls(std::map<std::string, std::string> const& sysctl)
{
    for (auto const& entry : sysctl) {
        auto const& name = entry.first; // a plain reference: lambdas below capture it (C++20 clang 14)
        auto const& value = entry.second;
        std::string path = "/proc/sys/" + name;
        for (size_t i = 10; i < path.size(); ++i) {
            if (path[i] == '.')
                path[i] = '/';
        }
        auto prefix = [&](Error const& error) { return error.with_prefix(fmt::format("linux.sysctl {}", name)); };
        auto fd = TRY(sys::open(path, O_WRONLY | O_CLOEXEC).map_error(prefix));
        TRY(sys::write_exact(fd.get(), value.data(), value.size()).map_error(prefix));
    }
    return {};
}

} // namespace

ErrorOr<std::string> resolve_in_root(std::string const& root, std::string const& path)
{
    std::vector<std::string> parts; // components resolved so far, below root
    std::vector<std::string> pending; // components still to walk, in reverse
    auto push_path = [&](std::string const& text) {
        std::vector<std::string> split;
        size_t start = 0;
        while (start <= text.size()) {
            auto end = text.find('/', start);
            auto part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (!part.empty() && part != ".")
                split.push_back(part);
            if (end == std::string::npos)
                break;
            start = end + 1;
        }
        for (auto it = split.rbegin(); it != split.rend(); ++it)
            pending.push_back(*it);
    };
    push_path(path);
    int links = 0;
    while (!pending.empty()) {
        auto part = pending.back();
        pending.pop_back();
        if (part == "..") {
            if (!parts.empty())
                parts.pop_back();
            continue;
        }
        std::string host = root;
        for (auto const& p : parts)
            host += "/" + p;
        host += "/" + part;
        struct stat st {};
        if (sys::lstat(host, st) && S_ISLNK(st.st_mode)) {
            if (++links > 40)
                return make_error(fmt::format("{}: too many symbolic links", path));
            auto target = TRY(sys::readlink(host));
            if (!target.empty() && target[0] == '/')
                parts.clear();
            push_path(target);
            continue;
        }
        parts.push_back(part);
    }
    std::string out = root;
    for (auto const& p : parts)
        out += "/" + p;
    return out;
}

ErrorOr<void> prepare_rootfs(RootfsPlan const& plan)
{
    auto const& linux = plan.config->linux;
    // Nothing done here may reach the host's mounts: slave by default, as the container asks otherwise.
    unsigned long propagation = propagation_flags(linux.rootfs_propagation);
    if (!propagation || (propagation & MS_SHARED))
        propagation = MS_SLAVE | MS_REC;
    TRY(sys::mount("", "/", "", propagation, ""));
    // pivot_root needs the new root to be a mount point.
    TRY(sys::mount(plan.rootfs, plan.rootfs, "", MS_BIND | MS_REC, "").map_error([&](Error const& error) {
        return error.with_prefix("root.path");
    }));
    for (size_t i = 0; i < plan.config->mounts.size(); ++i)
        TRY(mount_one(plan, plan.config->mounts[i], i));
    return make_devices(plan);
}

ErrorOr<void> enter_rootfs(RootfsPlan const& plan, bool no_pivot)
{
    auto const& linux = plan.config->linux;
    TRY(sys::chdir(plan.rootfs));
    if (no_pivot) {
        TRY(sys::mount(plan.rootfs, "/", "", MS_MOVE, ""));
        TRY(sys::chroot("."));
    } else {
        // The old root is stacked under the new one and detached: no directory to create in the rootfs.
        TRY(sys::pivot_root(".", "."));
        TRY(sys::umount(".", MNT_DETACH));
    }
    TRY(sys::chdir("/"));
    // Before /proc/sys turns read-only.
    TRY(write_sysctls(linux.sysctl));
    for (auto const& path : linux.masked_paths) {
        if (!exists(path))
            continue;
        if (is_directory(path))
            TRY(sys::mount("tmpfs", path, "tmpfs", MS_RDONLY, "").map_error([&](Error const& e) { return e.with_prefix("linux.maskedPaths"); }));
        else
            TRY(sys::mount("/dev/null", path, "", MS_BIND, "").map_error([&](Error const& e) { return e.with_prefix("linux.maskedPaths"); }));
    }
    for (auto const& path : linux.readonly_paths) {
        if (!exists(path))
            continue;
        auto prefix = [&](Error const& e) { return e.with_prefix("linux.readonlyPaths"); };
        TRY(sys::mount(path, path, "", MS_BIND | MS_REC, "").map_error(prefix));
        TRY(sys::mount("", path, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "").map_error(prefix));
    }
    if (plan.config->root.readonly)
        TRY(sys::mount("", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY, "").map_error([](Error const& e) { return e.with_prefix("root.readonly"); }));
    unsigned long propagation = propagation_flags(linux.rootfs_propagation);
    if (propagation)
        TRY(sys::mount("", "/", "", propagation, "").map_error([](Error const& e) { return e.with_prefix("linux.rootfsPropagation"); }));
    return {};
}

} // namespace kasou::container
