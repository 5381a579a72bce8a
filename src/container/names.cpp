#include "container/names.h"

#include <array>
#include <charconv>
#include <sys/resource.h>
#include <utility>

#include "base/sys_file.h"

namespace kasou::container {

namespace {

// capabilities(7), in kernel order: the index is the capability number.
constexpr std::array<std::string_view, 41> CAPABILITIES {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

constexpr std::array<std::pair<std::string_view, int>, 16> RLIMITS { {
    { "RLIMIT_AS", RLIMIT_AS },
    { "RLIMIT_CORE", RLIMIT_CORE },
    { "RLIMIT_CPU", RLIMIT_CPU },
    { "RLIMIT_DATA", RLIMIT_DATA },
    { "RLIMIT_FSIZE", RLIMIT_FSIZE },
    { "RLIMIT_LOCKS", RLIMIT_LOCKS },
    { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
    { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
    { "RLIMIT_NICE", RLIMIT_NICE },
    { "RLIMIT_NOFILE", RLIMIT_NOFILE },
    { "RLIMIT_NPROC", RLIMIT_NPROC },
    { "RLIMIT_RSS", RLIMIT_RSS },
    { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
    { "RLIMIT_RTTIME", RLIMIT_RTTIME },
    { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
    { "RLIMIT_STACK", RLIMIT_STACK },
} };

} // namespace

std::optional<int> capability_number(std::string_view name)
{
    for (size_t i = 0; i < CAPABILITIES.size(); ++i) {
        if (CAPABILITIES[i] == name)
            return static_cast<int>(i);
    }
    return std::nullopt;
}

std::vector<std::string_view> capability_names()
{
    return { CAPABILITIES.begin(), CAPABILITIES.end() };
}

int last_capability()
{
    auto text = sys::read_file("/proc/sys/kernel/cap_last_cap");
    int last = static_cast<int>(CAPABILITIES.size()) - 1;
    if (text)
        std::from_chars(text->data(), text->data() + text->size(), last);
    return std::min(last, static_cast<int>(CAPABILITIES.size()) - 1);
}

std::optional<int> rlimit_number(std::string_view name)
{
    for (auto const& [known, number] : RLIMITS) {
        if (known == name)
            return number;
    }
    return std::nullopt;
}

std::vector<std::string_view> rlimit_names()
{
    std::vector<std::string_view> names;
    for (auto const& entry : RLIMITS)
        names.push_back(entry.first);
    return names;
}

} // namespace kasou::container
