#include "container/cgroup.h"

#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <thread>
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/sys_path.h"
#include "base/try.h"

namespace kasou::container {

namespace {

constexpr char const* MOUNT_ROOT = "/sys/fs/cgroup";
// v1 controllers a container is placed in, where the host mounts them.
constexpr char const* V1_CONTROLLERS[] = { "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio", "hugetlb",
    "net_cls", "net_prio", "perf_event" };

bool exists(std::string const& path)
{
    struct stat st {};
    return static_cast<bool>(sys::stat(path, st));
}

ErrorOr<void> write_value(std::string const& directory, std::string const& file, std::string const& value)
{
    std::string path = directory + "/" + file;
    auto fd = TRY(sys::open(path, O_WRONLY | O_CLOEXEC).map_error([&](Error const& error) {
        return error.with_prefix(fmt::format("cgroup file {}", file));
    }));
    return sys::write_exact(fd.get(), value.data(), value.size()).map_error([&](Error const& error) {
        return Error::from_string(fmt::format("cgroup {} = {}: {}", file, value, error.to_string()), error.kind());
    });
}

std::string read_value(std::string const& path)
{
    auto text = sys::read_file(path);
    if (!text)
        return {};
    while (!text->empty() && (text->back() == '\n' || text->back() == ' '))
        text->pop_back();
    return *text;
}

std::string limit_text(i64 value)
{
    return value < 0 ? std::string("max") : std::to_string(value);
}

std::string device_rule_text(DeviceRule const& rule)
{
    if (rule.type == 'a')
        return "a";
    auto number = [](std::optional<i64> value) { return value ? std::to_string(*value) : std::string("*"); };
    return fmt::format("{} {}:{} {}", rule.type, number(rule.major), number(rule.minor), rule.access);
}

// Devices every container gets whatever its rules say (runtime-spec config-linux.md, "Default
// Devices"), and the pseudo-terminals of devpts.
std::vector<DeviceRule> default_device_rules()
{
    std::vector<DeviceRule> rules;
    for (auto [major, minor] : { std::pair { 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 }, { 5, 0 }, { 5, 2 } })
        rules.push_back({ true, 'c', major, minor, "rwm" });
    rules.push_back({ true, 'c', 136, std::nullopt, "rwm" });
    return rules;
}

} // namespace

std::string cgroup_path_for(std::string const& cgroups_path, std::string const& id)
{
    if (cgroups_path.empty())
        return "/kasou/" + id;
    if (cgroups_path[0] == '/')
        return cgroups_path;
    return "/kasou/" + cgroups_path;
}

ErrorOr<CgroupLayout> Cgroup::detect(std::string const& mount_root)
{
    auto type = TRY(sys::file_system_type(mount_root));
    if (type == CGROUP2_SUPER_MAGIC)
        return CgroupLayout::V2;
    auto unified = sys::file_system_type(mount_root + "/unified");
    if (unified && *unified == CGROUP2_SUPER_MAGIC)
        return CgroupLayout::Mixed;
    return CgroupLayout::V1;
}

Cgroup::Cgroup(CgroupLayout layout, std::string path)
    : m_layout(layout)
    , m_path(std::move(path))
{
    if (layout == CgroupLayout::V2) {
        m_directories.push_back(std::string(MOUNT_ROOT) + m_path);
        return;
    }
    std::vector<std::string> seen;
    for (char const* controller : V1_CONTROLLERS) {
        std::string mount = std::string(MOUNT_ROOT) + "/" + controller;
        if (!exists(mount))
            continue;
        // cpu and cpuacct are often one hierarchy under two names.
        auto real = std::filesystem::weakly_canonical(mount).string();
        if (std::find(seen.begin(), seen.end(), real) != seen.end())
            continue;
        seen.push_back(real);
        m_directories.push_back(mount + m_path);
    }
    if (layout == CgroupLayout::Mixed)
        m_directories.push_back(std::string(MOUNT_ROOT) + "/unified" + m_path);
}

std::string Cgroup::directory(std::string const& controller) const
{
    if (m_layout == CgroupLayout::V2)
        return m_directories.front();
    return std::string(MOUNT_ROOT) + "/" + controller + m_path;
}

ErrorOr<Cgroup> Cgroup::existing(std::string const& path)
{
    return Cgroup(TRY(detect()), path);
}

ErrorOr<void> Cgroup::make_directories() const
{
    for (auto const& directory : m_directories) {
        if (exists(directory))
            return make_error(ErrorKind::AlreadyExists, fmt::format("cgroup {} exists already", directory));
    }
    for (auto const& directory : m_directories) {
        TRY(sys::mkdir_all(directory, 0755));
        if (m_layout != CgroupLayout::V2 && directory.starts_with(std::string(MOUNT_ROOT) + "/cpuset/")) {
            // A v1 cpuset takes no process before its cpus and mems are set: inherit them down the path.
            std::string level = std::string(MOUNT_ROOT) + "/cpuset";
            for (size_t slash = m_path.find('/', 1);; slash = m_path.find('/', slash + 1)) {
                std::string child = std::string(MOUNT_ROOT) + "/cpuset" + m_path.substr(0, slash);
                for (char const* file : { "cpuset.cpus", "cpuset.mems" }) {
                    if (read_value(child + "/" + file).empty())
                        TRY(write_value(child, file, read_value(level + "/" + file)));
                }
                level = child;
                if (slash == std::string::npos)
                    break;
            }
        }
    }
    if (m_layout == CgroupLayout::V2) {
        // Enable the controllers the root offers on every level down to the container's parent.
        auto available = read_value(std::string(MOUNT_ROOT) + "/cgroup.controllers");
        std::string enable;
        for (char const* name : { "cpu", "cpuset", "memory", "pids", "io", "hugetlb" }) {
            if ((" " + available + " ").find(fmt::format(" {} ", name)) != std::string::npos)
                enable += fmt::format("+{} ", name);
        }
        if (!enable.empty()) {
            enable.pop_back();
            std::string level = MOUNT_ROOT;
            for (size_t slash = m_path.find('/', 1); slash != std::string::npos; slash = m_path.find('/', slash + 1)) {
                TRY(write_value(level, "cgroup.subtree_control", enable));
                level = std::string(MOUNT_ROOT) + m_path.substr(0, slash);
            }
            TRY(write_value(level, "cgroup.subtree_control", enable));
        }
    }
    return {};
}

ErrorOr<Cgroup> Cgroup::create(std::string const& path, Resources const& resources)
{
    if (path.empty() || path[0] != '/' || path == "/" || path.find("..") != std::string::npos)
        return make_error(fmt::format("linux.cgroupsPath: \"{}\" is not a cgroup path", path));
    Cgroup cgroup(TRY(detect()), path);
    auto made = cgroup.make_directories();
    if (made && (made = cgroup.apply(resources)))
        return cgroup;
    if (made.error().kind() != ErrorKind::AlreadyExists)
        (void)cgroup.destroy(); // the first error is the one to report
    return tl::unexpected(made.error());
}

ErrorOr<void> Cgroup::add_process(pid_t pid) const
{
    for (auto const& directory : m_directories)
        TRY(write_value(directory, "cgroup.procs", std::to_string(pid)));
    return {};
}

ErrorOr<void> Cgroup::apply(Resources const& resources) const
{
    if (m_layout == CgroupLayout::V2)
        return apply_v2(resources);
    return apply_v1(resources);
}

ErrorOr<void> Cgroup::apply_v1(Resources const& r) const
{
    if (!r.unified.empty())
        return make_error(ErrorKind::Unsupported, "linux.resources.unified: needs cgroup v2 controllers, and this host has cgroup v1 ones");
    auto memory = directory("memory");
    if (r.memory_limit)
        TRY(write_value(memory, "memory.limit_in_bytes", std::to_string(*r.memory_limit)));
    if (r.memory_swap) {
        if (!exists(memory + "/memory.memsw.limit_in_bytes"))
            return make_error(ErrorKind::Unsupported, "linux.resources.memory.swap: this kernel does not account swap (no memory.memsw.limit_in_bytes)");
        TRY(write_value(memory, "memory.memsw.limit_in_bytes", std::to_string(*r.memory_swap)));
    }
    if (r.memory_reservation)
        TRY(write_value(memory, "memory.soft_limit_in_bytes", std::to_string(*r.memory_reservation)));
    if (r.memory_swappiness)
        TRY(write_value(memory, "memory.swappiness", std::to_string(*r.memory_swappiness)));
    if (r.disable_oom_killer)
        TRY(write_value(memory, "memory.oom_control", "1"));
    auto cpu = directory("cpu");
    if (r.cpu_shares)
        TRY(write_value(cpu, "cpu.shares", std::to_string(*r.cpu_shares)));
    if (r.cpu_period)
        TRY(write_value(cpu, "cpu.cfs_period_us", std::to_string(*r.cpu_period)));
    if (r.cpu_quota)
        TRY(write_value(cpu, "cpu.cfs_quota_us", std::to_string(*r.cpu_quota)));
    if (r.cpu_idle)
        TRY(write_value(cpu, "cpu.idle", std::to_string(*r.cpu_idle)));
    if (!r.cpus.empty())
        TRY(write_value(directory("cpuset"), "cpuset.cpus", r.cpus));
    if (!r.mems.empty())
        TRY(write_value(directory("cpuset"), "cpuset.mems", r.mems));
    if (r.pids_limit)
        TRY(write_value(directory("pids"), "pids.max", *r.pids_limit <= 0 ? std::string("max") : std::to_string(*r.pids_limit)));
    auto blkio = directory("blkio");
    if (r.blkio_weight)
        TRY(write_value(blkio, exists(blkio + "/blkio.weight") ? "blkio.weight" : "blkio.bfq.weight", std::to_string(*r.blkio_weight)));
    if (r.blkio_leaf_weight)
        TRY(write_value(blkio, "blkio.leaf_weight", std::to_string(*r.blkio_leaf_weight)));
    for (auto const& device : r.blkio_weight_devices) {
        if (device.weight)
            TRY(write_value(blkio, "blkio.weight_device", fmt::format("{}:{} {}", device.major, device.minor, *device.weight)));
        if (device.leaf_weight)
            TRY(write_value(blkio, "blkio.leaf_weight_device", fmt::format("{}:{} {}", device.major, device.minor, *device.leaf_weight)));
    }
    std::pair<char const*, std::vector<ThrottleDevice> const*> const throttles[] = {
        { "blkio.throttle.read_bps_device", &r.throttle_read_bps },
        { "blkio.throttle.write_bps_device", &r.throttle_write_bps },
        { "blkio.throttle.read_iops_device", &r.throttle_read_iops },
        { "blkio.throttle.write_iops_device", &r.throttle_write_iops },
    };
    for (auto const& [file, list] : throttles) {
        for (auto const& device : *list)
            TRY(write_value(blkio, file, fmt::format("{}:{} {}", device.major, device.minor, device.rate)));
    }
    for (auto const& [size, limit] : r.hugepage_limits) {
        auto hugetlb = directory("hugetlb");
        if (!exists(hugetlb + "/hugetlb." + size + ".limit_in_bytes"))
            return make_error(ErrorKind::Unsupported, fmt::format("linux.resources.hugepageLimits: this host has no {} huge pages", size));
        TRY(write_value(hugetlb, "hugetlb." + size + ".limit_in_bytes", std::to_string(limit)));
    }
    if (!r.devices.empty()) {
        auto devices = directory("devices");
        for (auto const& rule : r.devices)
            TRY(write_value(devices, rule.allow ? "devices.allow" : "devices.deny", device_rule_text(rule)));
        for (auto const& rule : default_device_rules())
            TRY(write_value(devices, "devices.allow", device_rule_text(rule)));
    }
    return {};
}

ErrorOr<void> Cgroup::apply_v2(Resources const& r) const
{
    auto const& dir = m_directories.front();
    if (r.memory_limit)
        TRY(write_value(dir, "memory.max", limit_text(*r.memory_limit)));
    if (r.memory_swap) {
        if (*r.memory_swap < 0)
            TRY(write_value(dir, "memory.swap.max", "max"));
        else
            TRY(write_value(dir, "memory.swap.max", std::to_string(*r.memory_swap - r.memory_limit.value_or(0))));
    }
    if (r.memory_reservation)
        TRY(write_value(dir, "memory.low", limit_text(*r.memory_reservation)));
    if (r.memory_swappiness || r.disable_oom_killer)
        return make_error(ErrorKind::Unsupported, "linux.resources.memory: swappiness and disableOOMKiller do not exist in cgroup v2");
    if (r.cpu_shares) // cgroup v2 weight 1..10000 from v1 shares 2..262144
        TRY(write_value(dir, "cpu.weight", std::to_string(1 + ((*r.cpu_shares - 2) * 9999) / 262142)));
    if (r.cpu_quota || r.cpu_period)
        TRY(write_value(dir, "cpu.max", fmt::format("{} {}", limit_text(r.cpu_quota.value_or(-1)), r.cpu_period.value_or(100000))));
    if (r.cpu_idle)
        TRY(write_value(dir, "cpu.idle", std::to_string(*r.cpu_idle)));
    if (!r.cpus.empty())
        TRY(write_value(dir, "cpuset.cpus", r.cpus));
    if (!r.mems.empty())
        TRY(write_value(dir, "cpuset.mems", r.mems));
    if (r.pids_limit)
        TRY(write_value(dir, "pids.max", *r.pids_limit <= 0 ? std::string("max") : std::to_string(*r.pids_limit)));
    if (r.blkio_weight) // io.weight 1..10000 from blkio 10..1000
        TRY(write_value(dir, "io.weight", fmt::format("default {}", 1 + ((std::max<u64>(*r.blkio_weight, 10) - 10) * 9999) / 990)));
    std::pair<char const*, std::vector<ThrottleDevice> const*> const throttles[] = {
        { "rbps", &r.throttle_read_bps },
        { "wbps", &r.throttle_write_bps },
        { "riops", &r.throttle_read_iops },
        { "wiops", &r.throttle_write_iops },
    };
    for (auto const& [key, list] : throttles) {
        for (auto const& device : *list)
            TRY(write_value(dir, "io.max", fmt::format("{}:{} {}={}", device.major, device.minor, key, device.rate)));
    }
    for (auto const& [size, limit] : r.hugepage_limits)
        TRY(write_value(dir, "hugetlb." + size + ".max", std::to_string(limit)));
    for (auto const& [file, value] : r.unified)
        TRY(write_value(dir, file, value));
    bool restrictive = false;
    for (auto const& rule : r.devices)
        restrictive = restrictive || !(rule.allow && rule.type == 'a');
    if (restrictive)
        return make_error(ErrorKind::Unsupported,
            "linux.resources.devices: device rules on cgroup v2 need an eBPF program, which kasou does not load yet");
    return {};
}

ErrorOr<void> Cgroup::freeze(bool frozen) const
{
    if (m_layout == CgroupLayout::V2) {
        TRY(write_value(m_directories.front(), "cgroup.freeze", frozen ? "1" : "0"));
    } else {
        TRY(write_value(directory("freezer"), "freezer.state", frozen ? "FROZEN" : "THAWED"));
    }
    for (int attempt = 0; attempt < 1000; ++attempt) {
        if (this->frozen() == frozen)
            return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return make_error(ErrorKind::TimedOut, frozen ? "the cgroup did not freeze within a second" : "the cgroup did not thaw within a second");
}

bool Cgroup::frozen() const
{
    if (m_layout == CgroupLayout::V2)
        return read_value(m_directories.front() + "/cgroup.events").find("frozen 1") != std::string::npos;
    return read_value(directory("freezer") + "/freezer.state") == "FROZEN";
}

std::vector<pid_t> Cgroup::processes() const
{
    std::vector<pid_t> pids;
    if (m_directories.empty())
        return pids;
    auto text = read_value(m_directories.front() + "/cgroup.procs");
    std::string_view rest(text);
    while (!rest.empty()) {
        auto end = rest.find('\n');
        auto line = rest.substr(0, end);
        pid_t pid = 0;
        if (std::from_chars(line.data(), line.data() + line.size(), pid).ec == std::errc())
            pids.push_back(pid);
        if (end == std::string_view::npos)
            break;
        rest.remove_prefix(end + 1);
    }
    return pids;
}

ErrorOr<void> Cgroup::destroy() const
{
    for (auto const& directory : m_directories) {
        for (int attempt = 0;; ++attempt) {
            auto removed = sys::rmdir(directory);
            if (removed || removed.error().code() == ENOENT)
                break;
            if (removed.error().code() != EBUSY || attempt == 500)
                return removed;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    return {};
}

nlohmann::json Cgroup::stats() const
{
    auto number = [](std::string const& path) {
        u64 value = 0;
        auto text = read_value(path);
        std::from_chars(text.data(), text.data() + text.size(), value);
        return value;
    };
    nlohmann::json stats;
    if (m_layout == CgroupLayout::V2) {
        auto const& dir = m_directories.front();
        stats["memory"] = { { "usage", { { "usage", number(dir + "/memory.current") }, { "limit", number(dir + "/memory.max") } } } };
        stats["pids"] = { { "current", number(dir + "/pids.current") }, { "limit", number(dir + "/pids.max") } };
    } else {
        auto memory = directory("memory");
        stats["memory"] = { { "usage",
            { { "usage", number(memory + "/memory.usage_in_bytes") }, { "max", number(memory + "/memory.max_usage_in_bytes") },
                { "limit", number(memory + "/memory.limit_in_bytes") }, { "failcnt", number(memory + "/memory.failcnt") } } } };
        stats["pids"] = { { "current", number(directory("pids") + "/pids.current") }, { "limit", number(directory("pids") + "/pids.max") } };
        stats["cpu"] = { { "usage", { { "total", number(directory("cpuacct") + "/cpuacct.usage") } } } };
    }
    return stats;
}

} // namespace kasou::container
