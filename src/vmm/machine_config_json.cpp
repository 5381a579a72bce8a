#include "vmm/machine_config_json.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/try.h"
#include "vmm/json_object_reader.h"
#include "virtio/vsock/vsock_device.h"

namespace kasou::vmm {

namespace {

using Json = nlohmann::json;

char const* serial_kind_name(SerialSpec::Kind kind)
{
    switch (kind) {
    case SerialSpec::Kind::Stdio:
        return "stdio";
    case SerialSpec::Kind::File:
        return "file";
    case SerialSpec::Kind::Unix:
        return "unix";
    }
    return "?";
}

ErrorOr<SerialSpec> serial_from_json(Json const& json, std::string const& path)
{
    auto reader = TRY(ObjectReader::of(json, path));
    std::string kind = "stdio";
    SerialSpec serial;
    TRY(reader.string("kind", kind));
    TRY(reader.string("path", serial.path));
    TRY(reader.finish());
    if (kind == "stdio")
        serial.kind = SerialSpec::Kind::Stdio;
    else if (kind == "file")
        serial.kind = SerialSpec::Kind::File;
    else if (kind == "unix")
        serial.kind = SerialSpec::Kind::Unix;
    else
        return make_error(fmt::format("{}: '{}' is not stdio, file or unix", reader.field("kind"), kind));
    if (serial.kind == SerialSpec::Kind::Stdio && !serial.path.empty())
        return make_error(fmt::format("{}: stdio takes no path", reader.field("path")));
    if (serial.kind != SerialSpec::Kind::Stdio && serial.path.empty())
        return make_error(fmt::format("{}: {} needs a path", reader.field("path"), kind));
    return serial;
}

ErrorOr<DiskSpec> disk_from_json(Json const& json, std::string const& path)
{
    auto reader = TRY(ObjectReader::of(json, path));
    DiskSpec disk;
    std::optional<std::string> file;
    std::optional<std::string> volume;
    std::optional<std::string> nbd;
    TRY(reader.optional_string("path", file));
    TRY(reader.optional_string("volume", volume));
    TRY(reader.optional_string("nbd", nbd));
    TRY(reader.boolean("read_only", disk.read_only));
    TRY(reader.string("serial", disk.serial));
    TRY(reader.number("queues", disk.queues, 1, MAX_DISK_QUEUES));
    TRY(reader.finish());
    if (file.has_value() + volume.has_value() + nbd.has_value() != 1)
        return make_error(fmt::format("{}: give one of \"path\" (an image or block device), \"volume\" (POOL/VOL) or \"nbd\" (an NBD URI)", path));
    if (nbd) {
        if (nbd->empty())
            return make_error(fmt::format("{}: empty", reader.field("nbd")));
        disk.kind = DiskSpec::Kind::Nbd;
        disk.path = *nbd;
        return disk;
    }
    if (disk.serial.size() > 20)
        return make_error(fmt::format("{}: at most 20 characters", reader.field("serial")));
    if (file) {
        if (file->empty())
            return make_error(fmt::format("{}: empty", reader.field("path")));
        disk.path = *file;
        return disk;
    }
    auto slash = volume->find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == volume->size() || volume->find('/', slash + 1) != std::string::npos)
        return make_error(fmt::format("{}: '{}' is not POOL/VOL", reader.field("volume"), *volume));
    disk.kind = DiskSpec::Kind::Volume;
    disk.pool = volume->substr(0, slash);
    disk.volume = volume->substr(slash + 1);
    return disk;
}

ErrorOr<NetSpec> net_from_json(Json const& json, std::string const& path)
{
    auto reader = TRY(ObjectReader::of(json, path));
    NetSpec net;
    TRY(reader.string("tap", net.tap));
    TRY(reader.string("mac", net.mac));
    TRY(reader.finish());
    if (net.tap.empty())
        return make_error(fmt::format("{}: the tap interface is missing", reader.field("tap")));
    return net;
}

ErrorOr<VsockSpec> vsock_from_json(Json const& json, std::string const& path)
{
    auto reader = TRY(ObjectReader::of(json, path));
    VsockSpec vsock;
    TRY(reader.number("cid", vsock.guest_cid, 3, 0xFFFF'FFFE));
    TRY(reader.string("uds", vsock.uds_path));
    TRY(reader.number("max_connections", vsock.max_connections, 0, virtio::vsock::MAX_MAX_CONNECTIONS));
    TRY(reader.finish());
    if (vsock.guest_cid == 0)
        return make_error(fmt::format("{}: missing", reader.field("cid")));
    if (vsock.uds_path.empty())
        return make_error(fmt::format("{}: missing", reader.field("uds")));
    return vsock;
}

} // namespace

Json machine_config_to_json(MachineConfig const& config)
{
    Json disks = Json::array();
    for (auto const& disk : config.disks) {
        Json entry { { "read_only", disk.read_only }, { "serial", disk.serial }, { "queues", disk.queues } };
        if (disk.kind == DiskSpec::Kind::Volume)
            entry["volume"] = disk.pool + "/" + disk.volume;
        else if (disk.kind == DiskSpec::Kind::Nbd)
            entry["nbd"] = disk.path;
        else
            entry["path"] = disk.path;
        disks.push_back(std::move(entry));
    }
    Json nets = Json::array();
    for (auto const& net : config.nets)
        nets.push_back({ { "tap", net.tap }, { "mac", net.mac } });
    Json hidden = Json::array();
    for (auto const& feature : config.hidden_features)
        hidden.push_back(std::string(feature.name));
    Json serial { { "kind", serial_kind_name(config.serial.kind) } };
    if (config.serial.kind != SerialSpec::Kind::Stdio)
        serial["path"] = config.serial.path;
    Json vsock;
    if (config.vsock)
        vsock = { { "cid", config.vsock->guest_cid }, { "uds", config.vsock->uds_path }, { "max_connections", config.vsock->max_connections } };
    return {
        { "kernel", config.kernel_path },
        { "initrd", config.initrd_path ? Json(*config.initrd_path) : Json() },
        { "flat", config.flat },
        { "cpus", config.cpus },
        { "smt", config.smt },
        { "memory", config.memory },
        { "command_line", config.command_line ? Json(*config.command_line) : Json() },
        { "serial", serial },
        { "hidden_features", hidden },
        { "disks", disks },
        { "entropy", config.entropy },
        { "state_dir", config.state_dir },
        { "cores", config.cores ? Json(*config.cores) : Json() },
        { "nets", nets },
        { "vsock", vsock },
        { "virtio_console", config.virtio_console },
        { "io_poll_us", config.io_poll.count() },
    };
}

ErrorOr<MachineConfig> machine_config_from_json(Json const& json)
{
    auto reader = TRY(ObjectReader::of(json, ""));
    MachineConfig config;
    TRY(reader.string("kernel", config.kernel_path));
    if (config.kernel_path.empty())
        return make_error("kernel: a kernel path is required");
    TRY(reader.optional_string("initrd", config.initrd_path));
    TRY(reader.boolean("flat", config.flat));
    TRY(reader.number("cpus", config.cpus, 1, MAX_CONFIG_CPUS));
    TRY(reader.number("memory", config.memory, MachineConfig::MIN_MEMORY, UINT64_MAX));
    if (config.memory % (4 * KiB) != 0)
        return make_error(fmt::format("memory: {} is not a multiple of 4 KiB", config.memory));
    TRY(reader.optional_string("command_line", config.command_line));
    if (auto const* serial = reader.value("serial"))
        config.serial = TRY(serial_from_json(*serial, "serial"));
    std::vector<std::string> hidden;
    TRY(array(reader, "hidden_features", hidden, [](Json const& name, std::string const& path) -> ErrorOr<std::string> {
        if (!name.is_string())
            return make_error(fmt::format("{}: expected a feature name, got {}", path, name.type_name()));
        return name.get<std::string>();
    }));
    if (!hidden.empty()) {
        std::string list;
        for (auto const& name : hidden)
            list += (list.empty() ? "-" : ",-") + name;
        config.hidden_features = TRY(arch::x86_64::parse_hidden_features(list).map_error([](Error const& error) { return error.with_prefix("hidden_features"); }));
    }
    TRY(array(reader, "disks", config.disks, disk_from_json));
    TRY(reader.boolean("entropy", config.entropy));
    TRY(reader.string("state_dir", config.state_dir));
    TRY(reader.optional_string("cores", config.cores));
    TRY(array(reader, "nets", config.nets, net_from_json));
    if (auto const* vsock = reader.value("vsock"); vsock && !vsock->is_null())
        config.vsock = TRY(vsock_from_json(*vsock, "vsock"));
    TRY(reader.boolean("virtio_console", config.virtio_console));
    TRY(reader.boolean("smt", config.smt));
    u64 io_poll = u64(config.io_poll.count());
    TRY(reader.number("io_poll_us", io_poll, 0, MAX_CONFIG_IO_POLL_US));
    config.io_poll = std::chrono::microseconds(io_poll);
    TRY(reader.finish());
    return config;
}

ErrorOr<MachineConfig> machine_config_from_json_text(std::string_view text)
{
    Json json;
    try {
        json = Json::parse(text);
    } catch (Json::parse_error const& error) {
        return make_error(fmt::format("configuration is not JSON: {}", error.what()));
    }
    return machine_config_from_json(json);
}

} // namespace kasou::vmm
