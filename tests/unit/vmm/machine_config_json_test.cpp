// MachineConfig to and from JSON: round trips, defaults, and one clear error per bad field.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/try.h"
#include "vmm/machine_config_json.h"

using namespace kasou;
using namespace kasou::vmm;

namespace {

MachineConfig full_config()
{
    MachineConfig config;
    config.kernel_path = "/boot/vmlinuz";
    config.initrd_path = "/boot/initrd.img";
    config.flat = true;
    config.cpus = 3;
    config.smt = true;
    config.memory = 512 * MiB;
    config.command_line = "console=hvc0 quiet";
    config.serial = MUST(SerialSpec::parse("unix:/tmp/console.sock"));
    config.hidden_features = MUST(arch::x86_64::parse_hidden_features("-xsave"));
    config.disks = { MUST(DiskSpec::parse("root.img,serial=root")), MUST(DiskSpec::parse("vol:tank/data,ro,queues=4")) };
    config.entropy = false;
    config.state_dir = "/var/lib/kasou-test";
    config.cores = "2-4";
    config.nets = { MUST(NetSpec::parse("tap=tap0,mac=52:54:00:12:34:56")) };
    config.vsock = MUST(VsockSpec::parse("cid=7,uds=/tmp/v.sock,max_connections=9"));
    config.virtio_console = true;
    config.io_poll = std::chrono::microseconds(25);
    return config;
}

std::string error_of(std::string const& text)
{
    auto parsed = machine_config_from_json_text(text);
    EXPECT_FALSE(parsed) << text;
    return parsed ? std::string() : parsed.error().to_string();
}

} // namespace

TEST(MachineConfigJson, EveryFieldSurvivesARoundTrip)
{
    auto config = full_config();
    auto json = machine_config_to_json(config);
    auto back = MUST(machine_config_from_json(json));
    EXPECT_EQ(machine_config_to_json(back), json);
    // And through text, field by field.
    back = MUST(machine_config_from_json_text(json.dump()));
    EXPECT_EQ(back.kernel_path, "/boot/vmlinuz");
    EXPECT_EQ(back.initrd_path, "/boot/initrd.img");
    EXPECT_TRUE(back.flat);
    EXPECT_EQ(back.cpus, 3u);
    EXPECT_TRUE(back.smt);
    EXPECT_EQ(back.memory, 512 * MiB);
    EXPECT_EQ(back.command_line, "console=hvc0 quiet");
    EXPECT_EQ(back.serial.kind, SerialSpec::Kind::Unix);
    EXPECT_EQ(back.serial.path, "/tmp/console.sock");
    ASSERT_EQ(back.hidden_features.size(), config.hidden_features.size());
    EXPECT_EQ(back.hidden_features[0].name, config.hidden_features[0].name);
    ASSERT_EQ(back.disks.size(), 2u);
    EXPECT_EQ(back.disks[0].kind, DiskSpec::Kind::RawFile);
    EXPECT_EQ(back.disks[0].path, "root.img");
    EXPECT_EQ(back.disks[0].serial, "root");
    EXPECT_EQ(back.disks[1].kind, DiskSpec::Kind::Volume);
    EXPECT_EQ(back.disks[1].pool, "tank");
    EXPECT_EQ(back.disks[1].volume, "data");
    EXPECT_TRUE(back.disks[1].read_only);
    EXPECT_EQ(back.disks[1].queues, 4);
    EXPECT_FALSE(back.entropy);
    EXPECT_EQ(back.state_dir, "/var/lib/kasou-test");
    EXPECT_EQ(back.cores, "2-4");
    ASSERT_EQ(back.nets.size(), 1u);
    EXPECT_EQ(back.nets[0].tap, "tap0");
    EXPECT_EQ(back.nets[0].mac, "52:54:00:12:34:56");
    ASSERT_TRUE(back.vsock);
    EXPECT_EQ(back.vsock->guest_cid, 7u);
    EXPECT_EQ(back.vsock->uds_path, "/tmp/v.sock");
    EXPECT_EQ(back.vsock->max_connections, 9u);
    EXPECT_TRUE(back.virtio_console);
    EXPECT_EQ(back.io_poll.count(), 25);
}

TEST(MachineConfigJson, DefaultsRoundTripAndAKernelIsEnough)
{
    MachineConfig config;
    config.kernel_path = "guest.elf";
    auto json = machine_config_to_json(config);
    EXPECT_TRUE(json.at("initrd").is_null());
    EXPECT_TRUE(json.at("vsock").is_null());
    EXPECT_EQ(machine_config_to_json(MUST(machine_config_from_json(json))), json);

    auto smallest = MUST(machine_config_from_json_text(R"({"kernel": "guest.elf"})"));
    EXPECT_EQ(machine_config_to_json(smallest), json);
    EXPECT_TRUE(smallest.validate(8 * GiB, 4));
}

TEST(MachineConfigJson, UnknownFieldsAreNamed)
{
    EXPECT_EQ(error_of(R"({"kernel": "k", "cpu": 2})"), "cpu: unknown field");
    EXPECT_EQ(error_of(R"({"kernel": "k", "disks": [{"path": "a"}, {"path": "b", "readonly": true}]})"), "disks[1].readonly: unknown field");
    EXPECT_EQ(error_of(R"({"kernel": "k", "vsock": {"cid": 3, "uds": "u", "port": 1}})"), "vsock.port: unknown field");
}

TEST(MachineConfigJson, WrongTypesAreNamed)
{
    EXPECT_EQ(error_of(R"({"kernel": "k", "cpus": "2"})"), "cpus: expected a whole number, got string");
    EXPECT_EQ(error_of(R"({"kernel": "k", "cpus": 1.5})"), "cpus: expected a whole number, got number");
    EXPECT_EQ(error_of(R"({"kernel": "k", "entropy": 1})"), "entropy: expected true or false, got number");
    EXPECT_EQ(error_of(R"({"kernel": "k", "disks": {"path": "a"}})"), "disks: expected an array, got object");
    EXPECT_EQ(error_of(R"({"kernel": "k", "nets": ["tap0"]})"), "nets[0]: expected an object, got string");
    EXPECT_EQ(error_of(R"({"kernel": 7})"), "kernel: expected a string, got number");
    EXPECT_EQ(error_of(R"([1, 2])"), "configuration: expected an object, got array");
    EXPECT_NE(error_of(R"({"kernel": )").find("not JSON"), std::string::npos);
}

TEST(MachineConfigJson, OutOfRangeValuesAreNamed)
{
    EXPECT_EQ(error_of(R"({"kernel": "k", "cpus": 0})"), "cpus: 0 is out of range (1 to 4096)");
    EXPECT_EQ(error_of(R"({"kernel": "k", "cpus": -1})"), "cpus: expected a whole number, got number");
    EXPECT_EQ(error_of(R"({"kernel": "k", "memory": 4097})"), "memory: 4097 is out of range (1048576 to 18446744073709551615)");
    EXPECT_EQ(error_of(R"({"kernel": "k", "memory": 1052673})"), "memory: 1052673 is not a multiple of 4 KiB");
    EXPECT_EQ(error_of(R"({"kernel": "k", "disks": [{"path": "a", "queues": 17}]})"), "disks[0].queues: 17 is out of range (1 to 16)");
    EXPECT_EQ(error_of(R"({"kernel": "k", "vsock": {"cid": 2, "uds": "u"}})"), "vsock.cid: 2 is out of range (3 to 4294967294)");
    EXPECT_EQ(error_of(R"({"kernel": "k", "io_poll_us": 5000})"), "io_poll_us: 5000 is out of range (0 to 1000)");
}

TEST(MachineConfigJson, InconsistentValuesAreNamed)
{
    EXPECT_EQ(error_of(R"({})"), "kernel: a kernel path is required");
    EXPECT_NE(error_of(R"({"kernel": "k", "disks": [{"path": "a", "volume": "t/v"}]})").find("disks[0]: give one of"), std::string::npos);
    EXPECT_EQ(error_of(R"({"kernel": "k", "disks": [{"volume": "tank"}]})"), "disks[0].volume: 'tank' is not POOL/VOL");
    EXPECT_EQ(error_of(R"({"kernel": "k", "disks": [{"path": "a", "serial": "123456789012345678901"}]})"), "disks[0].serial: at most 20 characters");
    EXPECT_EQ(error_of(R"({"kernel": "k", "serial": {"kind": "pipe"}})"), "serial.kind: 'pipe' is not stdio, file or unix");
    EXPECT_EQ(error_of(R"({"kernel": "k", "serial": {"kind": "file"}})"), "serial.path: file needs a path");
    EXPECT_EQ(error_of(R"({"kernel": "k", "nets": [{"mac": "52:54:00:12:34:56"}]})"), "nets[0].tap: the tap interface is missing");
    EXPECT_EQ(error_of(R"({"kernel": "k", "vsock": {"cid": 3}})"), "vsock.uds: missing");
    EXPECT_NE(error_of(R"({"kernel": "k", "hidden_features": ["warp-drive"]})").find("hidden_features"), std::string::npos);
}
