#include "container/spec_template.h"

#include <nlohmann/json.hpp>

#include "container/names.h"

namespace kasou::container {

using Json = nlohmann::json;

std::string default_spec(bool rootless, unsigned uid, unsigned gid)
{
    Json caps = Json::array({ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" });
    Json spec = {
        { "ociVersion", "1.2.0" },
        { "process",
            { { "terminal", true },
                { "user", { { "uid", 0 }, { "gid", 0 } } },
                { "args", { "sh" } },
                { "env", { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" } },
                { "cwd", "/" },
                { "capabilities", { { "bounding", caps }, { "effective", caps }, { "permitted", caps } } },
                { "rlimits", Json::array({ { { "type", "RLIMIT_NOFILE" }, { "hard", 1024 }, { "soft", 1024 } } }) },
                { "noNewPrivileges", true } } },
        { "root", { { "path", "rootfs" }, { "readonly", true } } },
        { "hostname", "kasou" },
        { "mounts",
            Json::array({
                { { "destination", "/proc" }, { "type", "proc" }, { "source", "proc" } },
                { { "destination", "/dev" }, { "type", "tmpfs" }, { "source", "tmpfs" },
                    { "options", { "nosuid", "strictatime", "mode=755", "size=65536k" } } },
                { { "destination", "/dev/pts" }, { "type", "devpts" }, { "source", "devpts" },
                    { "options", { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" } } },
                { { "destination", "/dev/shm" }, { "type", "tmpfs" }, { "source", "shm" },
                    { "options", { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" } } },
                { { "destination", "/dev/mqueue" }, { "type", "mqueue" }, { "source", "mqueue" },
                    { "options", { "nosuid", "noexec", "nodev" } } },
                { { "destination", "/sys" }, { "type", "sysfs" }, { "source", "sysfs" },
                    { "options", { "nosuid", "noexec", "nodev", "ro" } } },
            }) },
        { "linux",
            { { "maskedPaths",
                  { "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                      "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" } },
                { "readonlyPaths",
                    { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" } } } },
    };
    Json namespaces = Json::array();
    for (char const* name : { "pid", "ipc", "uts", "mount" })
        namespaces.push_back({ { "type", name } });
    if (rootless) {
        namespaces.push_back({ { "type", "user" } });
        spec["linux"]["uidMappings"] = Json::array({ { { "containerID", 0 }, { "hostID", uid }, { "size", 1 } } });
        spec["linux"]["gidMappings"] = Json::array({ { { "containerID", 0 }, { "hostID", gid }, { "size", 1 } } });
        // Without CAP_SYS_ADMIN in the host, sysfs cannot be mounted anew: bind the host's.
        spec["mounts"][5] = { { "destination", "/sys" }, { "type", "none" }, { "source", "/sys" },
            { "options", { "rbind", "nosuid", "noexec", "nodev", "ro" } } };
    } else {
        namespaces.push_back({ { "type", "network" } });
        namespaces.push_back({ { "type", "cgroup" } });
        spec["linux"]["resources"] = { { "devices", Json::array({ { { "allow", false }, { "access", "rwm" } } }) } };
    }
    spec["linux"]["namespaces"] = namespaces;
    return spec.dump(2) + "\n";
}

std::string features_document()
{
    Json caps = Json::array();
    for (auto name : capability_names())
        caps.push_back(name);
    Json features = {
        { "ociVersionMin", "1.0.0" },
        { "ociVersionMax", "1.2.0" },
        { "hooks", { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop" } },
        { "mountOptions",
            { "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime", "loud",
                "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
                "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
                "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable" } },
        { "linux",
            { { "namespaces", { "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts" } },
                { "capabilities", caps },
                { "cgroup", { { "v1", true }, { "v2", true }, { "systemd", false }, { "systemdUser", false } } },
                { "seccomp",
                    { { "enabled", true },
                        { "actions",
                            { "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                                "SCMP_ACT_TRAP" } },
                        { "operators",
                            { "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                                "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE" } },
                        { "archs", { "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32" } } } },
                { "apparmor", { { "enabled", false } } },
                { "selinux", { { "enabled", false } } } } },
        { "annotations", { { "org.kasou.cores", "auto, or a list of host CPUs: the container's cpuset becomes a kasou core group" } } },
    };
    return features.dump(2) + "\n";
}

} // namespace kasou::container
