#include "vmm/api/vm_resources.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/try.h"
#include "storage/io/raw_file_device.h"
#include "virtio/net/mac_address.h"
#include "virtio/vsock/vsock_device.h"
#include "vmm/json_object_reader.h"
#include "vmm/machine_config_json.h"

namespace kasou::vmm::api {

namespace {

using Json = nlohmann::json;

// Firecracker's defaults for a machine configured through its API.
constexpr u32 DEFAULT_VCPUS = 1;
constexpr u64 DEFAULT_MEMORY_MIB = 128;
constexpr u64 MAX_MEMORY_MIB = u64 { 1 } << 30; // 1 PiB: beyond any host; the host check comes at start

// Reads a Firecracker field that kasou accepts only with the value that means "nothing special"
// (a CPU template of "None", no rate limiter): any other value is refused, naming what kasou lacks.
ErrorOr<void> only_default(ObjectReader& reader, std::string_view key, Json const& neutral, std::string_view what)
{
    auto const* value = reader.value(key);
    if (!value || *value == neutral || value->is_null())
        return {};
    return make_error(ErrorKind::Unsupported, fmt::format("{}: {} is not supported by kasou", reader.field(key), what));
}

ErrorOr<void> one_of(ObjectReader& reader, std::string_view key, std::initializer_list<std::string_view> allowed, std::string& out)
{
    std::string value;
    TRY(reader.string(key, value));
    if (!reader.value(key))
        return {};
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
        return make_error(fmt::format("{}: \"{}\" is not one of {}", reader.field(key), value, fmt::join(allowed, ", ")));
    out = value;
    return {};
}

// An id in a path (/drives/{id}) that a body may repeat, as Firecracker's bodies do.
ErrorOr<void> matching_id(ObjectReader& reader, std::string_view key, std::string const& id)
{
    std::string named = id;
    TRY(reader.string(key, named));
    if (named != id)
        return make_error(fmt::format("{}: \"{}\" differs from the id in the path (\"{}\")", reader.field(key), named, id));
    return {};
}

ErrorOr<ObjectReader> body_reader(Json const& body)
{
    if (!body.is_object())
        return make_error(fmt::format("the body must be a JSON object, not {}", body.type_name()));
    return ObjectReader::of(body, "");
}

} // namespace

VmResources VmResources::for_api(MachineConfig base)
{
    base.kernel_path.clear();
    base.cpus = DEFAULT_VCPUS;
    base.memory = DEFAULT_MEMORY_MIB * MiB;
    base.entropy = false;
    base.disks.clear();
    base.nets.clear();
    return VmResources(std::move(base));
}

VmResources VmResources::of(MachineConfig const& config)
{
    VmResources resources(config);
    for (size_t i = 0; i < config.disks.size(); ++i)
        resources.m_drives.push_back({ fmt::format("disk{}", i), config.disks[i], false, {} });
    for (size_t i = 0; i < config.nets.size(); ++i)
        resources.m_interfaces.push_back({ fmt::format("net{}", i), config.nets[i] });
    resources.m_config.disks.clear();
    resources.m_config.nets.clear();
    return resources;
}

ErrorOr<void> VmResources::put_boot_source(Json const& body)
{
    auto reader = TRY(body_reader(body));
    std::string kernel;
    std::optional<std::string> initrd;
    std::optional<std::string> boot_args;
    bool flat = false;
    TRY(reader.string("kernel_image_path", kernel));
    TRY(reader.optional_string("initrd_path", initrd));
    TRY(reader.optional_string("boot_args", boot_args));
    TRY(reader.boolean("flat", flat));
    TRY(reader.finish());
    if (kernel.empty())
        return make_error("kernel_image_path: a kernel image path is required");
    m_config.kernel_path = kernel;
    m_config.initrd_path = initrd;
    m_config.command_line = boot_args;
    m_config.flat = flat;
    return {};
}

ErrorOr<void> VmResources::put_machine_config(Json const& body, bool partial)
{
    auto reader = TRY(body_reader(body));
    MachineConfig next = m_config;
    u64 memory_mib = next.memory / MiB;
    if (!partial && (!body.contains("vcpu_count") || !body.contains("mem_size_mib")))
        return make_error("vcpu_count and mem_size_mib are required");
    TRY(reader.number("vcpu_count", next.cpus, 1, MAX_CONFIG_CPUS));
    TRY(reader.number("mem_size_mib", memory_mib, 1, MAX_MEMORY_MIB));
    TRY(reader.boolean("smt", next.smt));
    TRY(only_default(reader, "track_dirty_pages", false, "dirty page tracking (diff snapshots)"));
    TRY(only_default(reader, "cpu_template", "None", "a CPU template (kasou hides features with hidden_cpu_features)"));
    TRY(only_default(reader, "huge_pages", "None", "backing guest memory with huge pages"));
    // kasou's own fields.
    std::optional<std::string> hidden;
    TRY(reader.optional_string("hidden_cpu_features", hidden));
    TRY(reader.optional_string("cores", next.cores));
    std::string console = next.virtio_console ? "virtio" : "serial";
    TRY(one_of(reader, "console", { "serial", "virtio" }, console));
    std::string irqchip;
    TRY(one_of(reader, "irqchip", { "split", "kernel" }, irqchip));
    u64 io_poll_us = static_cast<u64>(next.io_poll.count());
    TRY(reader.number("io_poll_us", io_poll_us, 0, MAX_CONFIG_IO_POLL_US));
    TRY(reader.finish());
    if (next.smt && next.cpus > 1 && next.cpus % 2 != 0)
        return make_error(fmt::format("vcpu_count: {} vCPUs cannot be paired as two threads per core (smt): give 1 or an even count", next.cpus));
    if (hidden)
        next.hidden_features = TRY(arch::x86_64::parse_hidden_features(*hidden));
    next.memory = memory_mib * MiB;
    next.virtio_console = console == "virtio";
    if (!irqchip.empty())
        next.irqchip = irqchip == "split" ? engine::InterruptControllers::Split : engine::InterruptControllers::InKernel;
    next.io_poll = std::chrono::microseconds { io_poll_us };
    m_config = std::move(next);
    return {};
}

ErrorOr<void> VmResources::put_drive(std::string const& id, Json const& body)
{
    auto reader = TRY(body_reader(body));
    Drive drive { id, {}, false, {} };
    TRY(matching_id(reader, "drive_id", id));
    std::optional<std::string> path;
    std::optional<std::string> volume;
    TRY(reader.optional_string("path_on_host", path));
    TRY(reader.boolean("is_root_device", drive.root));
    TRY(reader.boolean("is_read_only", drive.disk.read_only));
    TRY(reader.string("partuuid", drive.partuuid));
    std::string ignored;
    // Accepted for compatibility: kasou flushes on the guest's request either way, and picks its I/O engine itself.
    TRY(one_of(reader, "cache_type", { "Unsafe", "Writeback" }, ignored));
    TRY(one_of(reader, "io_engine", { "Sync", "Async" }, ignored));
    TRY(only_default(reader, "rate_limiter", Json::object(), "a rate limiter"));
    TRY(only_default(reader, "socket", "", "a vhost-user block device"));
    // kasou's own fields.
    TRY(reader.optional_string("volume", volume));
    TRY(reader.string("serial", drive.disk.serial));
    TRY(reader.number("queues", drive.disk.queues, 1, MAX_DISK_QUEUES));
    TRY(reader.finish());
    if (!body.contains("is_root_device"))
        return make_error("is_root_device is required");
    if (path.has_value() == volume.has_value())
        return make_error("give exactly one of path_on_host (an image file) and volume (POOL/VOLUME of a kasou pool)");
    if (path) {
        drive.disk.kind = DiskSpec::Kind::RawFile;
        drive.disk.path = *path;
        // Refused now, as Firecracker does, rather than at InstanceStart.
        TRY(storage::RawFileDevice::open(*path, { .read_only = drive.disk.read_only }).map_error([&](Error const& error) {
            return error.with_prefix(fmt::format("path_on_host {}", *path));
        }));
    } else {
        auto slash = volume->find('/');
        if (slash == std::string::npos || slash == 0 || slash + 1 == volume->size())
            return make_error(fmt::format("volume: \"{}\" is not POOL/VOLUME", *volume));
        drive.disk.kind = DiskSpec::Kind::Volume;
        drive.disk.pool = volume->substr(0, slash);
        drive.disk.volume = volume->substr(slash + 1);
    }
    auto existing = std::find_if(m_drives.begin(), m_drives.end(), [&](Drive const& d) { return d.id == id; });
    if (drive.root) {
        for (auto const& other : m_drives) {
            if (other.root && other.id != id)
                return make_error(fmt::format("drive \"{}\" is the root device already; a machine has at most one", other.id));
        }
    }
    if (existing != m_drives.end())
        *existing = std::move(drive);
    else
        m_drives.push_back(std::move(drive));
    return {};
}

ErrorOr<void> VmResources::put_network_interface(std::string const& id, Json const& body)
{
    auto reader = TRY(body_reader(body));
    Interface interface { id, {} };
    TRY(matching_id(reader, "iface_id", id));
    TRY(reader.string("host_dev_name", interface.net.tap));
    TRY(reader.string("guest_mac", interface.net.mac));
    TRY(only_default(reader, "rx_rate_limiter", Json::object(), "a rate limiter"));
    TRY(only_default(reader, "tx_rate_limiter", Json::object(), "a rate limiter"));
    TRY(only_default(reader, "mtu", nullptr, "advertising an MTU"));
    TRY(reader.finish());
    if (interface.net.tap.empty())
        return make_error("host_dev_name: the name of a tap device is required");
    if (!interface.net.mac.empty())
        TRY(virtio::net::parse_mac(interface.net.mac).map_error([](Error const& error) { return error.with_prefix("guest_mac"); }));
    auto existing = std::find_if(m_interfaces.begin(), m_interfaces.end(), [&](Interface const& i) { return i.id == id; });
    if (existing != m_interfaces.end())
        *existing = std::move(interface);
    else
        m_interfaces.push_back(std::move(interface));
    return {};
}

ErrorOr<void> VmResources::put_vsock(Json const& body)
{
    auto reader = TRY(body_reader(body));
    VsockSpec vsock;
    std::string deprecated_id;
    TRY(reader.number("guest_cid", vsock.guest_cid, 3, 0xFFFFFFFE));
    TRY(reader.string("uds_path", vsock.uds_path));
    TRY(reader.string("vsock_id", deprecated_id));
    // kasou's own field.
    TRY(reader.number("max_connections", vsock.max_connections, 1, virtio::vsock::MAX_MAX_CONNECTIONS));
    TRY(reader.finish());
    if (!body.contains("guest_cid") || vsock.uds_path.empty())
        return make_error("guest_cid and uds_path are required");
    m_config.vsock = vsock;
    return {};
}

ErrorOr<void> VmResources::put_entropy(Json const& body)
{
    auto reader = TRY(body_reader(body));
    TRY(only_default(reader, "rate_limiter", Json::object(), "a rate limiter"));
    TRY(reader.finish());
    m_config.entropy = true;
    return {};
}

ErrorOr<MachineConfig> VmResources::machine_config() const
{
    if (m_config.kernel_path.empty())
        return make_error("no boot source: PUT /boot-source with a kernel_image_path first");
    MachineConfig config = m_config;
    std::string root_argument;
    for (auto const& drive : m_drives) {
        if (!drive.root)
            continue;
        config.disks.push_back(drive.disk);
        root_argument = drive.partuuid.empty() ? std::string(" root=/dev/vda") : fmt::format(" root=PARTUUID={}", drive.partuuid);
        root_argument += drive.disk.read_only ? " ro" : " rw";
    }
    for (auto const& drive : m_drives) {
        if (!drive.root)
            config.disks.push_back(drive.disk);
    }
    for (auto const& interface : m_interfaces)
        config.nets.push_back(interface.net);
    if (!root_argument.empty())
        config.command_line = config.effective_command_line() + root_argument;
    return config;
}

Json VmResources::machine_config_json() const
{
    std::vector<std::string> hidden;
    for (auto const& feature : m_config.hidden_features)
        hidden.push_back(fmt::format("-{}", feature.name));
    Json json {
        { "vcpu_count", m_config.cpus },
        { "mem_size_mib", m_config.memory / MiB },
        { "smt", m_config.smt },
        { "track_dirty_pages", false },
        { "huge_pages", "None" },
        { "console", m_config.virtio_console ? "virtio" : "serial" },
        { "io_poll_us", m_config.io_poll.count() },
    };
    if (!hidden.empty())
        json["hidden_cpu_features"] = fmt::format("{}", fmt::join(hidden, ","));
    if (m_config.cores)
        json["cores"] = *m_config.cores;
    if (m_config.irqchip)
        json["irqchip"] = *m_config.irqchip == engine::InterruptControllers::Split ? "split" : "kernel";
    return json;
}

Json VmResources::full_json() const
{
    Json boot;
    if (!m_config.kernel_path.empty()) {
        boot = { { "kernel_image_path", m_config.kernel_path }, { "boot_args", m_config.effective_command_line() } };
        if (m_config.initrd_path)
            boot["initrd_path"] = *m_config.initrd_path;
        if (m_config.flat)
            boot["flat"] = true;
    }
    Json drives = Json::array();
    for (auto const& drive : m_drives) {
        Json entry { { "drive_id", drive.id }, { "is_root_device", drive.root }, { "is_read_only", drive.disk.read_only },
            { "queues", drive.disk.queues } };
        if (drive.disk.kind == DiskSpec::Kind::Volume)
            entry["volume"] = fmt::format("{}/{}", drive.disk.pool, drive.disk.volume);
        else
            entry["path_on_host"] = drive.disk.path;
        if (!drive.partuuid.empty())
            entry["partuuid"] = drive.partuuid;
        if (!drive.disk.serial.empty())
            entry["serial"] = drive.disk.serial;
        drives.push_back(std::move(entry));
    }
    Json interfaces = Json::array();
    for (auto const& interface : m_interfaces) {
        Json entry { { "iface_id", interface.id }, { "host_dev_name", interface.net.tap } };
        if (!interface.net.mac.empty())
            entry["guest_mac"] = interface.net.mac;
        interfaces.push_back(std::move(entry));
    }
    Json json {
        { "boot-source", boot },
        { "machine-config", machine_config_json() },
        { "drives", drives },
        { "network-interfaces", interfaces },
        { "vsock", nullptr },
        { "entropy", nullptr },
    };
    if (m_config.vsock)
        json["vsock"] = { { "guest_cid", m_config.vsock->guest_cid }, { "uds_path", m_config.vsock->uds_path } };
    if (m_config.entropy)
        json["entropy"] = Json::object();
    return json;
}

} // namespace kasou::vmm::api
