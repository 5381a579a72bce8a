#pragma once

// The typed form of an OCI bundle's config.json (runtime-spec 1.1/1.2, config.md and
// config-linux.md). Only what parse_config() accepted ends up here: names are resolved to numbers
// (capabilities, rlimits, namespaces), paths checked, ranges checked.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::container {

struct IdMapping {
    u32 container_id { 0 };
    u32 host_id { 0 };
    u32 size { 0 };
};

struct User {
    u32 uid { 0 };
    u32 gid { 0 };
    std::optional<u32> umask;
    std::vector<u32> additional_gids;
};

struct Rlimit {
    int resource { 0 }; // RLIMIT_*
    std::string name; // "RLIMIT_NOFILE"
    u64 soft { 0 };
    u64 hard { 0 };
};

// The five capability sets as bit masks of CAP_* numbers.
struct Capabilities {
    u64 bounding { 0 };
    u64 effective { 0 };
    u64 inheritable { 0 };
    u64 permitted { 0 };
    u64 ambient { 0 };
};

struct Process {
    bool terminal { false };
    u32 console_height { 0 };
    u32 console_width { 0 };
    User user;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string cwd { "/" };
    std::optional<Capabilities> capabilities;
    std::vector<Rlimit> rlimits;
    bool no_new_privileges { false };
    std::optional<int> oom_score_adj;
    std::string apparmor_profile;
    std::string selinux_label;
};

struct Root {
    std::string path;
    bool readonly { false };
};

struct Mount {
    std::string destination;
    std::string type;
    std::string source;
    std::vector<std::string> options;
};

struct Hook {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::optional<int> timeout; // seconds
};

struct Hooks {
    std::vector<Hook> prestart;
    std::vector<Hook> create_runtime;
    std::vector<Hook> create_container;
    std::vector<Hook> start_container;
    std::vector<Hook> poststart;
    std::vector<Hook> poststop;
};

enum class NamespaceType { Pid, Network, Mount, Ipc, Uts, User, Cgroup, Time };

struct Namespace {
    NamespaceType type { NamespaceType::Pid };
    std::string path; // empty: a new namespace
};

struct Device {
    char type { 'c' }; // 'c', 'u', 'b' or 'p'
    std::string path;
    i64 major { 0 };
    i64 minor { 0 };
    std::optional<u32> file_mode;
    std::optional<u32> uid;
    std::optional<u32> gid;
};

struct DeviceRule {
    bool allow { false };
    char type { 'a' }; // 'a', 'c' or 'b'
    std::optional<i64> major; // absent: any
    std::optional<i64> minor;
    std::string access; // some of "rwm"
};

struct WeightDevice {
    i64 major { 0 };
    i64 minor { 0 };
    std::optional<u64> weight;
    std::optional<u64> leaf_weight;
};

struct ThrottleDevice {
    i64 major { 0 };
    i64 minor { 0 };
    u64 rate { 0 };
};

struct Resources {
    std::vector<DeviceRule> devices;
    // memory
    std::optional<i64> memory_limit; // -1: unlimited
    std::optional<i64> memory_reservation;
    std::optional<i64> memory_swap; // memory + swap, as in runtime-spec
    std::optional<u64> memory_swappiness;
    bool disable_oom_killer { false };
    // cpu
    std::optional<u64> cpu_shares;
    std::optional<i64> cpu_quota; // -1: unlimited
    std::optional<u64> cpu_period;
    std::optional<i64> cpu_idle;
    std::string cpus;
    std::string mems;
    // pids
    std::optional<i64> pids_limit; // -1 or 0: unlimited
    // block I/O
    std::optional<u64> blkio_weight;
    std::optional<u64> blkio_leaf_weight;
    std::vector<WeightDevice> blkio_weight_devices;
    std::vector<ThrottleDevice> throttle_read_bps;
    std::vector<ThrottleDevice> throttle_write_bps;
    std::vector<ThrottleDevice> throttle_read_iops;
    std::vector<ThrottleDevice> throttle_write_iops;
    // hugetlb: page size ("2MB") -> limit in bytes
    std::map<std::string, u64> hugepage_limits;
    // cgroup v2 files written as they are ("memory.high" -> "1G")
    std::map<std::string, std::string> unified;
};

enum class SeccompAction { Kill, KillProcess, KillThread, Trap, Errno, Trace, Allow, Log, Notify };

struct SeccompArg {
    u32 index { 0 };
    u64 value { 0 };
    u64 value_two { 0 };
    std::string op; // SCMP_CMP_*
};

struct SeccompRule {
    std::vector<std::string> names;
    SeccompAction action { SeccompAction::Allow };
    std::optional<u32> errno_ret;
    std::vector<SeccompArg> args;
};

struct Seccomp {
    SeccompAction default_action { SeccompAction::Allow };
    std::optional<u32> default_errno_ret;
    std::vector<std::string> architectures;
    std::vector<std::string> flags;
    std::string listener_path;
    std::string listener_metadata;
    std::vector<SeccompRule> syscalls;
};

struct Linux {
    std::vector<Namespace> namespaces;
    std::vector<IdMapping> uid_mappings;
    std::vector<IdMapping> gid_mappings;
    std::vector<Device> devices;
    std::string cgroups_path;
    Resources resources;
    std::string rootfs_propagation;
    std::vector<std::string> masked_paths;
    std::vector<std::string> readonly_paths;
    std::map<std::string, std::string> sysctl;
    std::optional<Seccomp> seccomp;
    std::string mount_label;
    // time namespace offsets: "monotonic" / "boottime" -> seconds, nanoseconds
    std::map<std::string, std::pair<i64, u32>> time_offsets;

    Namespace const* find_namespace(NamespaceType type) const;
};

// A whole config.json. `process` is optional in the specification (a bundle may be created only to
// be joined); `kasou oci create` requires it.
struct Config {
    std::string oci_version;
    std::optional<Process> process;
    Root root;
    std::vector<Mount> mounts;
    std::string hostname;
    std::string domainname;
    Hooks hooks;
    std::map<std::string, std::string> annotations;
    Linux linux;
};

// Parses and checks config.json text. Errors name the field ("process.capabilities.bounding[3]:
// unknown capability CAP_FOO"). Unknown properties are ignored, as runtime-spec requires; known
// ones kasou does not implement (linux.intelRdt, linux.personality, ...) are refused by name.
ErrorOr<Config> parse_config(std::string_view text);

// Parses a `process` object alone (`kasou oci exec --process FILE`).
ErrorOr<Process> parse_process(std::string_view text);

// Parses a `linux.resources` object alone (`kasou oci update --resources FILE`).
ErrorOr<Resources> parse_resources(std::string_view text);

std::string_view namespace_name(NamespaceType type);

} // namespace kasou::container
