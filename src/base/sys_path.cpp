#include "base/sys_path.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fmt/format.h>

namespace kasou::sys {

ErrorOr<std::string> make_temp_dir(std::string template_path)
{
    if (::mkdtemp(template_path.data()) == nullptr)
        return make_errno_error(errno, "mkdtemp");
    return template_path;
}

ErrorOr<void> rename(std::string const& from, std::string const& to)
{
    if (::rename(from.c_str(), to.c_str()) < 0)
        return make_errno_error(errno, fmt::format("rename {} to {}", from, to));
    return {};
}

ErrorOr<void> rename_exchange(std::string const& a, std::string const& b)
{
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) < 0)
        return make_errno_error(errno, fmt::format("exchange {} and {}", a, b));
    return {};
}

ErrorOr<void> mkdir_all(std::string const& path, mode_t mode)
{
    for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
        std::string prefix = path.substr(0, slash);
        if (!prefix.empty() && ::mkdir(prefix.c_str(), mode) < 0 && errno != EEXIST)
            return make_errno_error(errno, fmt::format("mkdir {}", prefix));
        if (slash == std::string::npos)
            return {};
    }
}

ErrorOr<void> unlink(std::string const& path)
{
    if (::unlink(path.c_str()) < 0)
        return make_errno_error(errno, fmt::format("unlink {}", path));
    return {};
}

ErrorOr<void> lstat(std::string const& path, struct stat& out)
{
    if (::lstat(path.c_str(), &out) < 0)
        return make_errno_error(errno, fmt::format("lstat {}", path));
    return {};
}

ErrorOr<void> stat(std::string const& path, struct stat& out)
{
    if (::stat(path.c_str(), &out) < 0)
        return make_errno_error(errno, fmt::format("stat {}", path));
    return {};
}

ErrorOr<long> file_system_type(std::string const& path)
{
    struct statfs info {};
    if (::statfs(path.c_str(), &info) < 0)
        return make_errno_error(errno, fmt::format("statfs {}", path));
    return static_cast<long>(info.f_type);
}

} // namespace kasou::sys
