#include "container/process_setup.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_credentials.h"
#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/sys_path.h"
#include "base/try.h"
#include "container/names.h"

namespace kasou::container {

namespace {

bool is_executable_file(std::string const& path)
{
    struct stat st {};
    return sys::stat(path, st) && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

} // namespace

ErrorOr<std::string> find_executable(Process const& process)
{
    auto const& name = process.args.front();
    if (name.find('/') != std::string::npos) {
        if (!is_executable_file(name))
            return make_error(ErrorKind::NotFound, fmt::format("process.args[0]: {} is not an executable file in the container", name));
        return name;
    }
    std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (auto const& entry : process.env) {
        if (entry.starts_with("PATH="))
            path = entry.substr(5);
    }
    size_t start = 0;
    while (start <= path.size()) {
        auto end = path.find(':', start);
        auto directory = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        std::string candidate = (directory.empty() ? "." : directory) + "/" + name;
        if (is_executable_file(candidate))
            return candidate;
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return make_error(ErrorKind::NotFound, fmt::format("process.args[0]: {} not found in the container's PATH ({})", name, path));
}

ErrorOr<void> apply_limits(Process const& process)
{
    for (auto const& limit : process.rlimits) {
        TRY(sys::setrlimit(limit.resource, limit.soft, limit.hard).map_error([&](Error const& error) {
            return error.with_prefix(fmt::format("process.rlimits {}", limit.name));
        }));
    }
    if (process.oom_score_adj) {
        auto fd = TRY(sys::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
        auto text = std::to_string(*process.oom_score_adj);
        TRY(sys::write_exact(fd.get(), text.data(), text.size()).map_error([](Error const& error) {
            return error.with_prefix("process.oomScoreAdj");
        }));
    }
    return {};
}

ErrorOr<void> switch_user(Process const& process, bool set_groups)
{
    auto const& caps = process.capabilities;
    int last = last_capability();
    if (caps) {
        for (int cap = 0; cap <= last; ++cap) {
            if (!(caps->bounding & (u64(1) << cap)))
                TRY(sys::prctl(PR_CAPBSET_DROP, static_cast<unsigned long>(cap), 0, "prctl(PR_CAPBSET_DROP)"));
        }
    }
    if (set_groups) {
        std::vector<gid_t> groups(process.user.additional_gids.begin(), process.user.additional_gids.end());
        TRY(sys::setgroups(groups).map_error([](Error const& error) { return error.with_prefix("process.user.additionalGids"); }));
    }
    TRY(sys::prctl(PR_SET_KEEPCAPS, 1, 0, "prctl(PR_SET_KEEPCAPS)"));
    TRY(sys::setresgid(process.user.gid).map_error([](Error const& error) { return error.with_prefix("process.user.gid"); }));
    TRY(sys::setresuid(process.user.uid).map_error([](Error const& error) { return error.with_prefix("process.user.uid"); }));
    TRY(sys::prctl(PR_SET_KEEPCAPS, 0, 0, "prctl(PR_SET_KEEPCAPS)"));
    if (caps) {
        TRY(sys::capset(caps->effective, caps->permitted, caps->inheritable).map_error([](Error const& error) {
            return error.with_prefix("process.capabilities");
        }));
        for (int cap = 0; cap <= last; ++cap) {
            if (caps->ambient & (u64(1) << cap))
                TRY(sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, static_cast<unsigned long>(cap), "process.capabilities.ambient"));
        }
    }
    return {};
}

ErrorOr<void> finish_process(Process const& process)
{
    if (process.no_new_privileges)
        TRY(sys::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, "prctl(PR_SET_NO_NEW_PRIVS)"));
    ::umask(process.user.umask.value_or(022));
    return sys::chdir(process.cwd).map_error([](Error const& error) { return error.with_prefix("process.cwd"); });
}

} // namespace kasou::container
