// parse_config(): config.json text to a checked Config (runtime-spec config.md, config-linux.md).

#include <climits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/try.h"
#include "container/config.h"
#include "container/json_fields.h"
#include "container/names.h"

namespace kasou::container {

namespace {

using Json = nlohmann::json;

constexpr i64 U32_MAX = 0xffffffffLL;

ErrorOr<u32> read_u32(JsonFields const& fields, std::string_view key, bool required)
{
    std::optional<u64> value;
    TRY(fields.unsigned_integer(key, value, U32_MAX));
    if (!value && required)
        return make_error(fmt::format("{}: required", fields.field(key)));
    return static_cast<u32>(value.value_or(0));
}

ErrorOr<void> absolute_path(JsonFields const& fields, std::string_view key, std::string const& path)
{
    if (!path.empty() && path[0] != '/')
        return make_error(fmt::format("{}: \"{}\" is not an absolute path", fields.field(key), path));
    return {};
}

ErrorOr<std::vector<IdMapping>> parse_mappings(JsonFields const& fields, std::string_view key)
{
    std::vector<IdMapping> out;
    for (auto const& item : TRY(fields.objects(key))) {
        IdMapping mapping;
        mapping.container_id = TRY(read_u32(item, "containerID", true));
        mapping.host_id = TRY(read_u32(item, "hostID", true));
        mapping.size = TRY(read_u32(item, "size", true));
        if (mapping.size == 0)
            return make_error(fmt::format("{}: must not be 0", item.field("size")));
        out.push_back(mapping);
    }
    return out;
}

ErrorOr<u64> capability_set(JsonFields const& fields, std::string_view key)
{
    std::vector<std::string> names;
    TRY(fields.strings(key, names));
    u64 mask = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        auto number = capability_number(names[i]);
        if (!number)
            return make_error(fmt::format("{}[{}]: unknown capability {}", fields.field(key), i, names[i]));
        mask |= u64(1) << *number;
    }
    return mask;
}

ErrorOr<Process> parse_process_fields(JsonFields const& fields)
{
    Process process;
    TRY(fields.boolean("terminal", process.terminal));
    if (auto size = TRY(fields.object("consoleSize"))) {
        process.console_height = TRY(read_u32(*size, "height", true));
        process.console_width = TRY(read_u32(*size, "width", true));
    }
    auto user = TRY(fields.object("user"));
    if (!user)
        return make_error(fmt::format("{}: required", fields.field("user")));
    process.user.uid = TRY(read_u32(*user, "uid", true));
    process.user.gid = TRY(read_u32(*user, "gid", true));
    if (user->has("umask"))
        process.user.umask = TRY(read_u32(*user, "umask", false));
    if (process.user.umask && *process.user.umask > 0777)
        return make_error(fmt::format("{}: {:o} is not a file mode mask", user->field("umask"), *process.user.umask));
    if (auto const* gids = user->value("additionalGids")) {
        if (!gids->is_array())
            return tl::unexpected(user->type_error("additionalGids", "an array of integers").error());
        for (size_t i = 0; i < gids->size(); ++i) {
            auto const& gid = (*gids)[i];
            if (!gid.is_number_unsigned() || gid.get<u64>() > static_cast<u64>(U32_MAX))
                return make_error(fmt::format("{}[{}]: expected a group ID", user->field("additionalGids"), i));
            process.user.additional_gids.push_back(gid.get<u32>());
        }
    }
    TRY(user->refuse("username", "Windows only"));
    TRY(fields.strings("args", process.args));
    TRY(fields.refuse("commandLine", "Windows only"));
    TRY(fields.strings("env", process.env));
    for (size_t i = 0; i < process.env.size(); ++i) {
        if (process.env[i].find('=') == std::string::npos)
            return make_error(fmt::format("{}[{}]: \"{}\" is not NAME=VALUE", fields.field("env"), i, process.env[i]));
    }
    TRY(fields.required_string("cwd", process.cwd));
    TRY(absolute_path(fields, "cwd", process.cwd));
    if (auto caps = TRY(fields.object("capabilities"))) {
        Capabilities sets;
        sets.bounding = TRY(capability_set(*caps, "bounding"));
        sets.effective = TRY(capability_set(*caps, "effective"));
        sets.inheritable = TRY(capability_set(*caps, "inheritable"));
        sets.permitted = TRY(capability_set(*caps, "permitted"));
        sets.ambient = TRY(capability_set(*caps, "ambient"));
        process.capabilities = sets;
    }
    for (auto const& item : TRY(fields.objects("rlimits"))) {
        Rlimit limit;
        TRY(item.required_string("type", limit.name));
        auto number = rlimit_number(limit.name);
        if (!number)
            return make_error(fmt::format("{}: unknown resource limit {}", item.field("type"), limit.name));
        limit.resource = *number;
        std::optional<u64> soft, hard;
        TRY(item.unsigned_integer("soft", soft, UINT64_MAX));
        TRY(item.unsigned_integer("hard", hard, UINT64_MAX));
        if (!soft || !hard)
            return make_error(fmt::format("{}: soft and hard are required", item.field("type")));
        if (*soft > *hard)
            return make_error(fmt::format("{}: soft limit {} is above the hard limit {}", item.field("soft"), *soft, *hard));
        for (auto const& seen : process.rlimits) {
            if (seen.resource == limit.resource)
                return make_error(fmt::format("{}: {} is given twice", item.field("type"), limit.name));
        }
        limit.soft = *soft;
        limit.hard = *hard;
        process.rlimits.push_back(limit);
    }
    TRY(fields.boolean("noNewPrivileges", process.no_new_privileges));
    std::optional<i64> oom;
    TRY(fields.integer("oomScoreAdj", oom, -1000, 1000));
    if (oom)
        process.oom_score_adj = static_cast<int>(*oom);
    TRY(fields.string("apparmorProfile", process.apparmor_profile));
    TRY(fields.string("selinuxLabel", process.selinux_label));
    TRY(fields.refuse("scheduler", "process scheduling policies (sched_setattr) are not implemented"));
    TRY(fields.refuse("ioPriority", "I/O priorities (ioprio_set) are not implemented"));
    TRY(fields.refuse("execCPUAffinity", "per-process CPU affinity is set through org.kasou.cores instead"));
    if (process.args.empty())
        return make_error(fmt::format("{}: required and must not be empty", fields.field("args")));
    return process;
}

ErrorOr<Hook> parse_hook(JsonFields const& fields)
{
    Hook hook;
    TRY(fields.required_string("path", hook.path));
    TRY(absolute_path(fields, "path", hook.path));
    TRY(fields.strings("args", hook.args));
    TRY(fields.strings("env", hook.env));
    std::optional<i64> timeout;
    TRY(fields.integer("timeout", timeout, 1, INT_MAX));
    if (timeout)
        hook.timeout = static_cast<int>(*timeout);
    return hook;
}

ErrorOr<Hooks> parse_hooks(JsonFields const& fields)
{
    Hooks hooks;
    std::pair<char const*, std::vector<Hook>*> const kinds[] = {
        { "prestart", &hooks.prestart },
        { "createRuntime", &hooks.create_runtime },
        { "createContainer", &hooks.create_container },
        { "startContainer", &hooks.start_container },
        { "poststart", &hooks.poststart },
        { "poststop", &hooks.poststop },
    };
    for (auto const& [key, list] : kinds) {
        for (auto const& item : TRY(fields.objects(key)))
            list->push_back(TRY(parse_hook(item)));
    }
    return hooks;
}

ErrorOr<NamespaceType> namespace_type(JsonFields const& fields, std::string const& name)
{
    for (auto type : { NamespaceType::Pid, NamespaceType::Network, NamespaceType::Mount, NamespaceType::Ipc, NamespaceType::Uts,
             NamespaceType::User, NamespaceType::Cgroup, NamespaceType::Time }) {
        if (namespace_name(type) == name)
            return type;
    }
    return make_error(fmt::format("{}: unknown namespace \"{}\"", fields.field("type"), name));
}

ErrorOr<std::optional<i64>> device_number(JsonFields const& fields, std::string_view key)
{
    std::optional<i64> number;
    TRY(fields.integer(key, number, -1, U32_MAX));
    if (number == -1)
        number.reset();
    return number;
}

ErrorOr<std::vector<ThrottleDevice>> parse_throttles(JsonFields const& fields, std::string_view key)
{
    std::vector<ThrottleDevice> out;
    for (auto const& item : TRY(fields.objects(key))) {
        ThrottleDevice device;
        std::optional<i64> major, minor;
        TRY(item.integer("major", major, 0, U32_MAX));
        TRY(item.integer("minor", minor, 0, U32_MAX));
        std::optional<u64> rate;
        TRY(item.unsigned_integer("rate", rate, UINT64_MAX));
        if (!major || !minor || !rate)
            return make_error(fmt::format("{}: major, minor and rate are required", item.field("rate")));
        device.major = *major;
        device.minor = *minor;
        device.rate = *rate;
        out.push_back(device);
    }
    return out;
}

ErrorOr<Resources> parse_resources_fields(JsonFields const& fields)
{
    Resources resources;
    for (auto const& item : TRY(fields.objects("devices"))) {
        DeviceRule rule;
        TRY(item.boolean("allow", rule.allow));
        if (!item.has("allow"))
            return make_error(fmt::format("{}: required", item.field("allow")));
        std::string type = "a";
        TRY(item.string("type", type));
        if (type != "a" && type != "c" && type != "b")
            return make_error(fmt::format("{}: \"{}\" is not a, c or b", item.field("type"), type));
        rule.type = type[0];
        rule.major = TRY(device_number(item, "major"));
        rule.minor = TRY(device_number(item, "minor"));
        rule.access = "rwm";
        TRY(item.string("access", rule.access));
        if (rule.access.empty() || rule.access.find_first_not_of("rwm") != std::string::npos)
            return make_error(fmt::format("{}: \"{}\" is not a combination of r, w and m", item.field("access"), rule.access));
        resources.devices.push_back(rule);
    }
    if (auto memory = TRY(fields.object("memory"))) {
        TRY(memory->integer("limit", resources.memory_limit, -1, INT64_MAX));
        TRY(memory->integer("reservation", resources.memory_reservation, -1, INT64_MAX));
        TRY(memory->integer("swap", resources.memory_swap, -1, INT64_MAX));
        TRY(memory->unsigned_integer("swappiness", resources.memory_swappiness, 100));
        TRY(memory->boolean("disableOOMKiller", resources.disable_oom_killer));
        TRY(memory->refuse("kernel", "kernel memory limits are deprecated and gone from current kernels"));
        TRY(memory->refuse("kernelTCP", "kernel TCP memory limits are not implemented"));
        TRY(memory->refuse("checkBeforeUpdate", "not implemented"));
        if (resources.memory_limit && *resources.memory_limit >= 0 && *resources.memory_limit < 4096 * 2)
            return make_error(fmt::format("{}: {} bytes is too small to run a process", memory->field("limit"), *resources.memory_limit));
        if (resources.memory_limit && resources.memory_swap && *resources.memory_swap >= 0
            && (*resources.memory_limit < 0 || *resources.memory_swap < *resources.memory_limit))
            return make_error(fmt::format("{}: memory+swap {} is below the memory limit", memory->field("swap"), *resources.memory_swap));
    }
    if (auto cpu = TRY(fields.object("cpu"))) {
        TRY(cpu->unsigned_integer("shares", resources.cpu_shares, 262144));
        TRY(cpu->integer("quota", resources.cpu_quota, -1, INT64_MAX));
        TRY(cpu->unsigned_integer("period", resources.cpu_period, 1000000));
        TRY(cpu->integer("idle", resources.cpu_idle, 0, 1));
        TRY(cpu->string("cpus", resources.cpus));
        TRY(cpu->string("mems", resources.mems));
        TRY(cpu->refuse("realtimeRuntime", "real-time CPU bandwidth is not implemented"));
        TRY(cpu->refuse("realtimePeriod", "real-time CPU bandwidth is not implemented"));
        TRY(cpu->refuse("burst", "CPU burst is not implemented"));
        if (resources.cpu_shares && *resources.cpu_shares < 2)
            return make_error(fmt::format("{}: must be at least 2", cpu->field("shares")));
        if (resources.cpu_period && *resources.cpu_period < 1000)
            return make_error(fmt::format("{}: must be at least 1000 microseconds", cpu->field("period")));
        if (resources.cpu_quota && *resources.cpu_quota >= 0 && *resources.cpu_quota < 1000)
            return make_error(fmt::format("{}: must be -1 or at least 1000 microseconds", cpu->field("quota")));
    }
    if (auto pids = TRY(fields.object("pids")))
        TRY(pids->integer("limit", resources.pids_limit, -1, INT64_MAX));
    if (auto io = TRY(fields.object("blockIO"))) {
        TRY(io->unsigned_integer("weight", resources.blkio_weight, 1000));
        TRY(io->unsigned_integer("leafWeight", resources.blkio_leaf_weight, 1000));
        for (auto const& item : TRY(io->objects("weightDevice"))) {
            WeightDevice device;
            std::optional<i64> major, minor;
            TRY(item.integer("major", major, 0, U32_MAX));
            TRY(item.integer("minor", minor, 0, U32_MAX));
            if (!major || !minor)
                return make_error(fmt::format("{}: major and minor are required", item.field("major")));
            device.major = *major;
            device.minor = *minor;
            TRY(item.unsigned_integer("weight", device.weight, 1000));
            TRY(item.unsigned_integer("leafWeight", device.leaf_weight, 1000));
            resources.blkio_weight_devices.push_back(device);
        }
        resources.throttle_read_bps = TRY(parse_throttles(*io, "throttleReadBpsDevice"));
        resources.throttle_write_bps = TRY(parse_throttles(*io, "throttleWriteBpsDevice"));
        resources.throttle_read_iops = TRY(parse_throttles(*io, "throttleReadIOPSDevice"));
        resources.throttle_write_iops = TRY(parse_throttles(*io, "throttleWriteIOPSDevice"));
    }
    for (auto const& item : TRY(fields.objects("hugepageLimits"))) {
        std::string size;
        TRY(item.required_string("pageSize", size));
        std::optional<u64> limit;
        TRY(item.unsigned_integer("limit", limit, UINT64_MAX));
        if (!limit)
            return make_error(fmt::format("{}: required", item.field("limit")));
        if (size.find_first_of("/.") != std::string::npos)
            return make_error(fmt::format("{}: \"{}\" is not a page size", item.field("pageSize"), size));
        resources.hugepage_limits[size] = *limit;
    }
    TRY(fields.string_map("unified", resources.unified));
    for (auto const& [name, value] : resources.unified) {
        if (name.empty() || name.find('/') != std::string::npos || name.find("..") != std::string::npos)
            return make_error(fmt::format("{}: \"{}\" is not a cgroup file name", fields.field("unified"), name));
    }
    TRY(fields.refuse("network", "the net_cls and net_prio controllers are not implemented"));
    TRY(fields.refuse("rdma", "the rdma controller is not implemented"));
    return resources;
}

ErrorOr<SeccompAction> seccomp_action(JsonFields const& fields, std::string_view key)
{
    std::string name;
    TRY(fields.required_string(key, name));
    std::pair<std::string_view, SeccompAction> const actions[] = {
        { "SCMP_ACT_KILL", SeccompAction::Kill },
        { "SCMP_ACT_KILL_PROCESS", SeccompAction::KillProcess },
        { "SCMP_ACT_KILL_THREAD", SeccompAction::KillThread },
        { "SCMP_ACT_TRAP", SeccompAction::Trap },
        { "SCMP_ACT_ERRNO", SeccompAction::Errno },
        { "SCMP_ACT_TRACE", SeccompAction::Trace },
        { "SCMP_ACT_ALLOW", SeccompAction::Allow },
        { "SCMP_ACT_LOG", SeccompAction::Log },
        { "SCMP_ACT_NOTIFY", SeccompAction::Notify },
    };
    for (auto const& [known, action] : actions) {
        if (known == name)
            return action;
    }
    return make_error(fmt::format("{}: unknown seccomp action {}", fields.field(key), name));
}

ErrorOr<Seccomp> parse_seccomp(JsonFields const& fields)
{
    Seccomp seccomp;
    seccomp.default_action = TRY(seccomp_action(fields, "defaultAction"));
    if (fields.has("defaultErrnoRet"))
        seccomp.default_errno_ret = TRY(read_u32(fields, "defaultErrnoRet", false));
    TRY(fields.strings("architectures", seccomp.architectures));
    TRY(fields.strings("flags", seccomp.flags));
    for (auto const& flag : seccomp.flags) {
        if (flag != "SECCOMP_FILTER_FLAG_LOG" && flag != "SECCOMP_FILTER_FLAG_SPEC_ALLOW" && flag != "SECCOMP_FILTER_FLAG_TSYNC")
            return make_error(fmt::format("{}: unknown seccomp flag {}", fields.field("flags"), flag));
    }
    TRY(fields.string("listenerPath", seccomp.listener_path));
    TRY(absolute_path(fields, "listenerPath", seccomp.listener_path));
    TRY(fields.string("listenerMetadata", seccomp.listener_metadata));
    bool notify = seccomp.default_action == SeccompAction::Notify;
    for (auto const& item : TRY(fields.objects("syscalls"))) {
        SeccompRule rule;
        TRY(item.strings("names", rule.names));
        if (rule.names.empty())
            return make_error(fmt::format("{}: required and must not be empty", item.field("names")));
        rule.action = TRY(seccomp_action(item, "action"));
        notify = notify || rule.action == SeccompAction::Notify;
        if (item.has("errnoRet"))
            rule.errno_ret = TRY(read_u32(item, "errnoRet", false));
        for (auto const& arg_fields : TRY(item.objects("args"))) {
            SeccompArg arg;
            arg.index = TRY(read_u32(arg_fields, "index", true));
            if (arg.index > 5)
                return make_error(fmt::format("{}: a system call has 6 arguments (0..5)", arg_fields.field("index")));
            std::optional<u64> value, value_two;
            TRY(arg_fields.unsigned_integer("value", value, UINT64_MAX));
            TRY(arg_fields.unsigned_integer("valueTwo", value_two, UINT64_MAX));
            arg.value = value.value_or(0);
            arg.value_two = value_two.value_or(0);
            TRY(arg_fields.required_string("op", arg.op));
            rule.args.push_back(arg);
        }
        seccomp.syscalls.push_back(rule);
    }
    if (notify && seccomp.listener_path.empty())
        return make_error(fmt::format("{}: required when an action is SCMP_ACT_NOTIFY", fields.field("listenerPath")));
    return seccomp;
}

ErrorOr<Linux> parse_linux(JsonFields const& fields)
{
    Linux linux;
    for (auto const& item : TRY(fields.objects("namespaces"))) {
        std::string name;
        TRY(item.required_string("type", name));
        Namespace ns;
        ns.type = TRY(namespace_type(item, name));
        TRY(item.string("path", ns.path));
        TRY(absolute_path(item, "path", ns.path));
        if (linux.find_namespace(ns.type))
            return make_error(fmt::format("{}: the {} namespace is given twice", item.field("type"), name));
        linux.namespaces.push_back(ns);
    }
    linux.uid_mappings = TRY(parse_mappings(fields, "uidMappings"));
    linux.gid_mappings = TRY(parse_mappings(fields, "gidMappings"));
    for (auto const& item : TRY(fields.objects("devices"))) {
        Device device;
        std::string type;
        TRY(item.required_string("type", type));
        if (type != "c" && type != "b" && type != "u" && type != "p")
            return make_error(fmt::format("{}: \"{}\" is not c, b, u or p", item.field("type"), type));
        device.type = type[0];
        TRY(item.required_string("path", device.path));
        TRY(absolute_path(item, "path", device.path));
        std::optional<i64> major, minor;
        TRY(item.integer("major", major, 0, U32_MAX));
        TRY(item.integer("minor", minor, 0, U32_MAX));
        if (device.type != 'p' && (!major || !minor))
            return make_error(fmt::format("{}: major and minor are required for a {} device", item.field("path"), type));
        device.major = major.value_or(0);
        device.minor = minor.value_or(0);
        if (item.has("fileMode"))
            device.file_mode = TRY(read_u32(item, "fileMode", false));
        if (item.has("uid"))
            device.uid = TRY(read_u32(item, "uid", false));
        if (item.has("gid"))
            device.gid = TRY(read_u32(item, "gid", false));
        linux.devices.push_back(device);
    }
    TRY(fields.string("cgroupsPath", linux.cgroups_path));
    if (linux.cgroups_path.find("..") != std::string::npos)
        return make_error(fmt::format("{}: \"{}\" must not contain ..", fields.field("cgroupsPath"), linux.cgroups_path));
    if (auto resources = TRY(fields.object("resources")))
        linux.resources = TRY(parse_resources_fields(*resources));
    TRY(fields.string("rootfsPropagation", linux.rootfs_propagation));
    if (!linux.rootfs_propagation.empty() && linux.rootfs_propagation != "private" && linux.rootfs_propagation != "rprivate"
        && linux.rootfs_propagation != "slave" && linux.rootfs_propagation != "rslave" && linux.rootfs_propagation != "shared"
        && linux.rootfs_propagation != "rshared" && linux.rootfs_propagation != "unbindable"
        && linux.rootfs_propagation != "runbindable")
        return make_error(fmt::format("{}: unknown propagation \"{}\"", fields.field("rootfsPropagation"), linux.rootfs_propagation));
    TRY(fields.strings("maskedPaths", linux.masked_paths));
    TRY(fields.strings("readonlyPaths", linux.readonly_paths));
    for (auto const& path : linux.masked_paths)
        TRY(absolute_path(fields, "maskedPaths", path));
    for (auto const& path : linux.readonly_paths)
        TRY(absolute_path(fields, "readonlyPaths", path));
    TRY(fields.string_map("sysctl", linux.sysctl));
    for (auto const& [name, value] : linux.sysctl) {
        if (name.empty() || name.find("..") != std::string::npos || name[0] == '/' || name[0] == '.')
            return make_error(fmt::format("{}: \"{}\" is not a sysctl name", fields.field("sysctl"), name));
    }
    if (auto seccomp = TRY(fields.object("seccomp")))
        linux.seccomp = TRY(parse_seccomp(*seccomp));
    TRY(fields.string("mountLabel", linux.mount_label));
    if (auto offsets = TRY(fields.object("timeOffsets"))) {
        for (char const* clock : { "monotonic", "boottime" }) {
            if (auto offset = TRY(offsets->object(clock))) {
                std::optional<i64> secs;
                std::optional<u64> nanosecs;
                TRY(offset->integer("secs", secs, INT64_MIN, INT64_MAX));
                TRY(offset->unsigned_integer("nanosecs", nanosecs, 999999999));
                linux.time_offsets[clock] = { secs.value_or(0), static_cast<u32>(nanosecs.value_or(0)) };
            }
        }
    }
    TRY(fields.refuse("intelRdt", "Intel RDT (resctrl) is not implemented"));
    TRY(fields.refuse("personality", "execution domains (personality) are not implemented"));
    TRY(fields.refuse("memoryPolicy", "NUMA memory policies are set through org.kasou.cores instead"));
    TRY(fields.refuse("netDevices", "moving network devices into the container is not implemented"));

    // Checks across fields.
    bool user_ns = linux.find_namespace(NamespaceType::User) != nullptr;
    if (!user_ns && (!linux.uid_mappings.empty() || !linux.gid_mappings.empty()))
        return make_error("linux.uidMappings: ID mappings need a user namespace in linux.namespaces");
    auto const* user = linux.find_namespace(NamespaceType::User);
    if (user && user->path.empty() && (linux.uid_mappings.empty() || linux.gid_mappings.empty()))
        return make_error("linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
    auto const* time = linux.find_namespace(NamespaceType::Time);
    if (!linux.time_offsets.empty() && (!time || !time->path.empty()))
        return make_error("linux.timeOffsets: offsets need a new time namespace in linux.namespaces");
    return linux;
}

ErrorOr<Json> parse_json(std::string_view text, std::string_view what)
{
    auto json = Json::parse(text, nullptr, false);
    if (json.is_discarded())
        return make_error(fmt::format("{}: not valid JSON", what));
    return json;
}

} // namespace

std::string_view namespace_name(NamespaceType type)
{
    switch (type) {
    case NamespaceType::Pid:
        return "pid";
    case NamespaceType::Network:
        return "network";
    case NamespaceType::Mount:
        return "mount";
    case NamespaceType::Ipc:
        return "ipc";
    case NamespaceType::Uts:
        return "uts";
    case NamespaceType::User:
        return "user";
    case NamespaceType::Cgroup:
        return "cgroup";
    case NamespaceType::Time:
        return "time";
    }
    return "?";
}

Namespace const* Linux::find_namespace(NamespaceType type) const
{
    for (auto const& ns : namespaces) {
        if (ns.type == type)
            return &ns;
    }
    return nullptr;
}

ErrorOr<Config> parse_config(std::string_view text)
{
    auto json = TRY(parse_json(text, "config.json"));
    auto fields = TRY(JsonFields::of(json, ""));
    Config config;
    TRY(fields.required_string("ociVersion", config.oci_version));
    if (!config.oci_version.starts_with("1."))
        return make_error(fmt::format("ociVersion: {} is not a 1.x version of the runtime specification", config.oci_version));
    if (auto process = TRY(fields.object("process")))
        config.process = TRY(parse_process_fields(*process));
    auto root = TRY(fields.object("root"));
    if (!root)
        return make_error("root: required");
    TRY(root->required_string("path", config.root.path));
    TRY(root->boolean("readonly", config.root.readonly));
    for (auto const& item : TRY(fields.objects("mounts"))) {
        Mount mount;
        TRY(item.required_string("destination", mount.destination));
        TRY(absolute_path(item, "destination", mount.destination));
        TRY(item.string("type", mount.type));
        TRY(item.string("source", mount.source));
        TRY(item.strings("options", mount.options));
        TRY(item.refuse("uidMappings", "ID-mapped mounts are not implemented"));
        TRY(item.refuse("gidMappings", "ID-mapped mounts are not implemented"));
        config.mounts.push_back(mount);
    }
    TRY(fields.string("hostname", config.hostname));
    TRY(fields.string("domainname", config.domainname));
    if (auto hooks = TRY(fields.object("hooks")))
        config.hooks = TRY(parse_hooks(*hooks));
    TRY(fields.string_map("annotations", config.annotations));
    if (auto linux = TRY(fields.object("linux")))
        config.linux = TRY(parse_linux(*linux));
    TRY(fields.refuse("solaris", "not a Linux container"));
    TRY(fields.refuse("windows", "not a Linux container"));
    TRY(fields.refuse("vm", "hardware-virtualized containers are run by `kasou run`, not by the OCI runtime"));
    TRY(fields.refuse("zos", "not a Linux container"));
    auto const* uts = config.linux.find_namespace(NamespaceType::Uts);
    if ((!config.hostname.empty() || !config.domainname.empty()) && !uts)
        return make_error("hostname: setting a host or domain name needs a uts namespace in linux.namespaces");
    return config;
}

ErrorOr<Process> parse_process(std::string_view text)
{
    auto json = TRY(parse_json(text, "process"));
    return parse_process_fields(TRY(JsonFields::of(json, "process")));
}

ErrorOr<Resources> parse_resources(std::string_view text)
{
    auto json = TRY(parse_json(text, "resources"));
    return parse_resources_fields(TRY(JsonFields::of(json, "resources")));
}

} // namespace kasou::container
