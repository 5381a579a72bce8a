#include "base/sys_credentials.h"

#include <cerrno>
#include <grp.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_retry.h"

namespace kasou::sys {

ErrorOr<void> setresuid(uid_t uid)
{
    if (::setresuid(uid, uid, uid) < 0)
        return make_errno_error(errno, "setresuid");
    return {};
}

ErrorOr<void> setresgid(gid_t gid)
{
    if (::setresgid(gid, gid, gid) < 0)
        return make_errno_error(errno, "setresgid");
    return {};
}

ErrorOr<void> setgroups(std::vector<gid_t> const& groups)
{
    if (::setgroups(groups.size(), groups.data()) < 0)
        return make_errno_error(errno, "setgroups");
    return {};
}

ErrorOr<int> prctl(int option, unsigned long argument, unsigned long argument2, char const* name)
{
    int result = ::prctl(option, argument, argument2, 0, 0);
    if (result < 0)
        return make_errno_error(errno, name);
    return result;
}

ErrorOr<void> capset(u64 effective, u64 permitted, u64 inheritable)
{
    __user_cap_header_struct header { _LINUX_CAPABILITY_VERSION_3, 0 };
    __user_cap_data_struct data[2] {};
    data[0].effective = static_cast<u32>(effective);
    data[1].effective = static_cast<u32>(effective >> 32);
    data[0].permitted = static_cast<u32>(permitted);
    data[1].permitted = static_cast<u32>(permitted >> 32);
    data[0].inheritable = static_cast<u32>(inheritable);
    data[1].inheritable = static_cast<u32>(inheritable >> 32);
    if (::syscall(SYS_capset, &header, data) < 0)
        return make_errno_error(errno, "capset");
    return {};
}

ErrorOr<void> setrlimit(int resource, u64 soft, u64 hard)
{
    rlimit limit { soft, hard };
    if (::setrlimit(static_cast<__rlimit_resource>(resource), &limit) < 0)
        return make_errno_error(errno, "setrlimit");
    return {};
}

ErrorOr<void> setsid()
{
    if (::setsid() < 0)
        return make_errno_error(errno, "setsid");
    return {};
}

ErrorOr<void> dup2(int from, int to)
{
    if (detail::retry_on_eintr([&] { return ::dup2(from, to); }) < 0)
        return make_errno_error(errno, "dup2");
    return {};
}

ErrorOr<void> execve(std::string const& path, std::vector<std::string> const& argv, std::vector<std::string> const& env)
{
    std::vector<char*> args;
    for (auto const& arg : argv)
        args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto const& entry : env)
        envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
    ::execve(path.c_str(), args.data(), envp.data());
    return make_errno_error(errno, fmt::format("exec {}", path));
}

ErrorOr<void> join_session_keyring(std::string const& name)
{
    if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.c_str()) < 0)
        return make_errno_error(errno, "keyctl(KEYCTL_JOIN_SESSION_KEYRING)");
    return {};
}

} // namespace kasou::sys
