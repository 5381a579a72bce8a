// vmm::api::ApiController's routes, answered without a machine: every route's success and error
// answers in Firecracker's form, the state before InstanceStart, what InstanceStart hands to the
// launcher, metrics and logger files. Driving a started machine is checked by the integration test
// (tests/integration/vmm_api_test.sh).

#include <fstream>
#include <sstream>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "vmm/api/api_controller.h"

using namespace kasou;
using namespace kasou::vmm;
using Json = nlohmann::json;

namespace {

class ApiControllerTest : public ::testing::Test {
protected:
    ApiControllerTest()
    {
        m_dir = ::testing::TempDir() + "kasou-api-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::filesystem::create_directories(m_dir);
        m_kernel = m_dir + "/kernel";
        std::ofstream(m_kernel) << "not really a kernel";
        m_disk = m_dir + "/disk.img";
        std::ofstream(m_disk) << std::string(4096, '\0');
    }
    ~ApiControllerTest() override { std::filesystem::remove_all(m_dir); }

    http::Response call(std::string method, std::string target, std::string body = {})
    {
        return m_controller.handle({ std::move(method), std::move(target), std::move(body) });
    }

    // The fault_message of a 400 answer (fails the test for anything else).
    std::string fault(std::string method, std::string target, std::string body = {})
    {
        auto response = call(std::move(method), std::move(target), std::move(body));
        EXPECT_EQ(response.status, 400u) << response.body;
        auto json = Json::parse(response.body, nullptr, false);
        EXPECT_TRUE(json.is_object() && json.contains("fault_message")) << response.body;
        return json.is_object() ? json.value("fault_message", std::string()) : std::string();
    }

    Json get(std::string target)
    {
        auto response = call("GET", std::move(target));
        EXPECT_EQ(response.status, 200u) << response.body;
        EXPECT_EQ(response.content_type, "application/json");
        return Json::parse(response.body, nullptr, false);
    }

    void expect_no_content(std::string method, std::string target, std::string body)
    {
        auto response = call(method, target, body);
        EXPECT_EQ(response.status, 204u) << method << " " << target << " " << body << " -> " << response.body;
        EXPECT_TRUE(response.body.empty());
    }

    void boot_source() { expect_no_content("PUT", "/boot-source", Json { { "kernel_image_path", m_kernel }, { "boot_args", "console=ttyS0" } }.dump()); }

    std::string m_dir;
    std::string m_kernel;
    std::string m_disk;
    std::vector<MachineConfig> m_launched;
    api::ApiController m_controller { "vm-7", api::VmResources::for_api({}), [this](MachineConfig const& config) -> ErrorOr<Machine*> {
                                         m_launched.push_back(config);
                                         return make_error("no machine in this test");
                                     } };
};

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST_F(ApiControllerTest, InstanceInfoAndVersion)
{
    auto info = get("/");
    EXPECT_EQ(info, (Json { { "id", "vm-7" }, { "state", "Not started" }, { "vmm_version", KASOU_VERSION }, { "app_name", "kasou" } }));
    EXPECT_EQ(get("/version"), (Json { { "firecracker_version", KASOU_VERSION } }));
}

TEST_F(ApiControllerTest, FirecrackerDefaultsBeforeAnyConfiguration)
{
    auto config = get("/machine-config");
    EXPECT_EQ(config["vcpu_count"], 1);
    EXPECT_EQ(config["mem_size_mib"], 128);
    EXPECT_EQ(config["smt"], false);
    auto full = get("/vm/config");
    EXPECT_TRUE(full["boot-source"].is_null());
    EXPECT_EQ(full["drives"], Json::array());
    EXPECT_TRUE(full["entropy"].is_null()) << "no entropy device until PUT /entropy, as Firecracker";
}

TEST_F(ApiControllerTest, ConfigurationShowsInVmConfigAndReachesTheLauncher)
{
    boot_source();
    expect_no_content("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "smt": true, "cores": "auto", "console": "virtio"})");
    expect_no_content("PATCH", "/machine-config", R"({"mem_size_mib": 96})");
    expect_no_content("PUT", "/drives/scratch", Json { { "drive_id", "scratch" }, { "path_on_host", m_disk }, { "is_root_device", false }, { "is_read_only", true } }.dump());
    expect_no_content("PUT", "/drives/rootfs", Json { { "drive_id", "rootfs" }, { "path_on_host", m_disk }, { "is_root_device", true }, { "is_read_only", false }, { "queues", 2 } }.dump());
    expect_no_content("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap7", "guest_mac": "52:54:00:12:34:56"})");
    expect_no_content("PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "/tmp/v.sock"})");
    expect_no_content("PUT", "/entropy", "{}");

    auto full = get("/vm/config");
    EXPECT_EQ(full["boot-source"]["kernel_image_path"], m_kernel);
    EXPECT_EQ(full["machine-config"]["vcpu_count"], 2);
    EXPECT_EQ(full["machine-config"]["mem_size_mib"], 96);
    EXPECT_EQ(full["machine-config"]["cores"], "auto");
    ASSERT_EQ(full["drives"].size(), 2u);
    EXPECT_EQ(full["drives"][0]["drive_id"], "scratch");
    EXPECT_EQ(full["network-interfaces"][0]["host_dev_name"], "tap7");
    EXPECT_EQ(full["vsock"]["guest_cid"], 3);
    EXPECT_EQ(full["entropy"], Json::object());

    auto failed = fault("PUT", "/actions", R"({"action_type": "InstanceStart"})");
    EXPECT_CONTAINS(failed, "InstanceStart: no machine in this test");
    ASSERT_EQ(m_launched.size(), 1u);
    auto const& config = m_launched[0];
    EXPECT_EQ(config.kernel_path, m_kernel);
    EXPECT_EQ(config.cpus, 2u);
    EXPECT_TRUE(config.smt);
    EXPECT_EQ(config.memory, 96 * MiB);
    EXPECT_EQ(config.cores, "auto");
    EXPECT_TRUE(config.virtio_console);
    ASSERT_EQ(config.disks.size(), 2u);
    EXPECT_EQ(config.disks[0].queues, 2) << "the root device comes first: /dev/vda";
    EXPECT_TRUE(config.disks[1].read_only);
    EXPECT_EQ(config.effective_command_line(), "console=ttyS0 root=/dev/vda rw");
    ASSERT_EQ(config.nets.size(), 1u);
    EXPECT_EQ(config.nets[0].mac, "52:54:00:12:34:56");
    ASSERT_TRUE(config.vsock);
    EXPECT_EQ(config.vsock->guest_cid, 3u);
    EXPECT_TRUE(config.entropy);
    EXPECT_EQ(get("/")["state"], "Not started") << "a launch that failed started nothing";
}

TEST_F(ApiControllerTest, InstanceStartNeedsABootSource)
{
    EXPECT_CONTAINS(fault("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "no boot source");
    EXPECT_TRUE(m_launched.empty());
}

TEST_F(ApiControllerTest, ActionsAndVmStatesRefusedWithoutARunningMachine)
{
    EXPECT_CONTAINS(fault("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), "SendCtrlAltDel: the machine is not running");
    EXPECT_CONTAINS(fault("PUT", "/actions", R"({"action_type": "FlushMetrics"})"), "PUT /metrics first");
    EXPECT_CONTAINS(fault("PUT", "/actions", R"({"action_type": "Reboot"})"), "\"Reboot\" is not one of");
    EXPECT_CONTAINS(fault("PUT", "/actions", R"({})"), "action_type: required");
    EXPECT_CONTAINS(fault("PUT", "/actions", R"({"action_type": "InstanceStart", "x": 1})"), "x: unknown field");
    EXPECT_CONTAINS(fault("PATCH", "/vm", R"({"state": "Paused"})"), "Paused: the machine is not running");
    EXPECT_CONTAINS(fault("PATCH", "/vm", R"({"state": "Resumed"})"), "Resumed: the machine is not running");
    EXPECT_CONTAINS(fault("PATCH", "/vm", R"({"state": "Sleeping"})"), "\"Sleeping\" is not one of Paused, Resumed");
    EXPECT_CONTAINS(fault("PATCH", "/vm", R"({"state": 1})"), "state: required");
    EXPECT_EQ(get("/")["state"], "Not started");
}

TEST_F(ApiControllerTest, BadBodiesAreRefusedAndChangeNothing)
{
    boot_source();
    auto before = get("/vm/config");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", ""), "needs a JSON body");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", "{\"vcpu_count\": 2,"), "not valid JSON");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", "[1, 2]"), "must be a JSON object");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2})"), "vcpu_count and mem_size_mib are required");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 64})"), "vcpu_count: 0 is out of range");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 64})"), "vcpu_count: expected a whole number");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 3, "mem_size_mib": 64, "smt": true})"), "smt");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "cpu_template": "T2"})"), "cpu_template");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "track_dirty_pages": true})"), "not supported");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "huge_pages": "2M"})"), "huge_pages");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "irqchip": "both"})"), "irqchip");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "hidden_cpu_features": "-nosuch"})"), "nosuch");
    EXPECT_CONTAINS(fault("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64, "colour": "red"})"), "colour: unknown field");
    EXPECT_CONTAINS(fault("PUT", "/boot-source", R"({"boot_args": "quiet"})"), "kernel_image_path");
    EXPECT_CONTAINS(fault("PUT", "/boot-source", R"({"kernel_image_path": 5})"), "kernel_image_path: expected a string");
    EXPECT_CONTAINS(fault("PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "/tmp/v"})"), "guest_cid: 2 is out of range");
    EXPECT_CONTAINS(fault("PUT", "/vsock", R"({"guest_cid": 3})"), "uds_path are required");
    EXPECT_CONTAINS(fault("PUT", "/entropy", R"({"rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}}})"), "rate limiter");
    EXPECT_EQ(get("/vm/config"), before);
}

TEST_F(ApiControllerTest, DrivesAndInterfacesAreChecked)
{
    auto drive = [&](Json body) { return body.dump(); };
    EXPECT_CONTAINS(fault("PUT", "/drives/a-b", drive({ { "path_on_host", m_disk }, { "is_root_device", false } })), "not a valid id");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "drive_id", "b" }, { "path_on_host", m_disk }, { "is_root_device", false } })), "differs from the id in the path");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "path_on_host", m_disk } })), "is_root_device is required");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "path_on_host", m_dir + "/missing.img" }, { "is_root_device", false } })), "missing.img");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "is_root_device", false } })), "exactly one of path_on_host");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "path_on_host", m_disk }, { "volume", "tank/v" }, { "is_root_device", false } })), "exactly one of");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "volume", "tank" }, { "is_root_device", false } })), "not POOL/VOLUME");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "path_on_host", m_disk }, { "is_root_device", false }, { "queues", 17 } })), "queues");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "path_on_host", m_disk }, { "is_root_device", false }, { "rate_limiter", { { "ops", 1 } } } })), "rate limiter");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "socket", "/tmp/vhost" }, { "is_root_device", false } })), "vhost-user");
    EXPECT_CONTAINS(fault("PUT", "/drives/a", drive({ { "path_on_host", m_disk }, { "is_root_device", false }, { "cache_type", "Never" } })), "cache_type");
    expect_no_content("PUT", "/drives/a", drive({ { "path_on_host", m_disk }, { "is_root_device", true }, { "cache_type", "Writeback" }, { "io_engine", "Async" } }));
    EXPECT_CONTAINS(fault("PUT", "/drives/b", drive({ { "path_on_host", m_disk }, { "is_root_device", true } })), "drive \"a\" is the root device already");
    // Putting an id again replaces that drive, in its place.
    expect_no_content("PUT", "/drives/b", drive({ { "volume", "tank/data" }, { "is_root_device", false }, { "serial", "data" } }));
    expect_no_content("PUT", "/drives/a", drive({ { "path_on_host", m_disk }, { "is_root_device", false }, { "partuuid", "ignored-unless-root" } }));
    auto drives = get("/vm/config")["drives"];
    ASSERT_EQ(drives.size(), 2u);
    EXPECT_EQ(drives[0]["drive_id"], "a");
    EXPECT_EQ(drives[0]["is_root_device"], false);
    EXPECT_EQ(drives[1]["volume"], "tank/data");
    EXPECT_CONTAINS(fault("PATCH", "/drives/a", drive({ { "drive_id", "a" }, { "path_on_host", m_disk } })), "does not change drives");

    EXPECT_CONTAINS(fault("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0"})"), "host_dev_name");
    EXPECT_CONTAINS(fault("PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz"})"), "zz");
    EXPECT_CONTAINS(fault("PUT", "/network-interfaces/eth0", R"({"host_dev_name": "tap0", "rx_rate_limiter": {"ops": {}}})"), "rate limiter");
    EXPECT_CONTAINS(fault("PUT", "/network-interfaces/eth0", R"({"host_dev_name": "tap0", "mtu": 1400})"), "MTU");
    EXPECT_CONTAINS(fault("PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0"})"), "does not change");
}

TEST_F(ApiControllerTest, UnknownAndUnsupportedRoutes)
{
    EXPECT_EQ(fault("GET", "/nothing"), "Invalid request method and/or path: GET /nothing");
    EXPECT_EQ(fault("DELETE", "/vm"), "Invalid request method and/or path: DELETE /vm");
    EXPECT_EQ(fault("GET", "/boot-source"), "Invalid request method and/or path: GET /boot-source");
    EXPECT_CONTAINS(fault("PUT", "/snapshot/create", R"({"snapshot_path": "s", "mem_file_path": "m"})"), "snapshots are not available through kasou's API yet");
    EXPECT_CONTAINS(fault("PUT", "/snapshot/load", R"({"snapshot_path": "s"})"), "snapshots are not available");
    for (auto path : { "/balloon", "/balloon/statistics", "/mmds", "/mmds/config", "/cpu-config", "/serial", "/pmem/p0", "/hotplug/memory" })
        EXPECT_CONTAINS(fault("PUT", path, "{}"), "not supported by kasou");
    EXPECT_EQ(fault("PUT", "/balloons"), "Invalid request method and/or path: PUT /balloons");
    EXPECT_EQ(get("/?x=1")["state"], "Not started") << "a query is not part of the path";
}

TEST_F(ApiControllerTest, MetricsAreAppendedOnFlushWithCountsSinceTheLastLine)
{
    auto path = m_dir + "/metrics.json";
    EXPECT_CONTAINS(fault("PUT", "/metrics", R"({"metrics_path": 5})"), "metrics_path");
    EXPECT_CONTAINS(fault("PUT", "/metrics", Json { { "metrics_path", m_dir + "/no/such/dir" } }.dump()), "no/such/dir");
    expect_no_content("PUT", "/metrics", Json { { "metrics_path", path }, { "emit_id", true }, { "properties", { { "zone", "a" } } } }.dump());
    expect_no_content("PUT", "/actions", R"({"action_type": "FlushMetrics"})");
    (void)get("/");
    ASSERT_TRUE(m_controller.flush_metrics());
    std::ifstream file(path);
    std::string first;
    std::string second;
    ASSERT_TRUE(std::getline(file, first));
    ASSERT_TRUE(std::getline(file, second));
    auto one = Json::parse(first);
    auto two = Json::parse(second);
    EXPECT_EQ(one["id"], "vm-7");
    EXPECT_EQ(one["properties"]["zone"], "a");
    EXPECT_EQ(one["vm"]["state"], "Not started");
    EXPECT_EQ(one["api_server"]["requests"], 4) << "three refused PUT /metrics... and the accepted one, then the flush itself";
    EXPECT_EQ(one["api_server"]["request_fails"], 2);
    EXPECT_EQ(two["api_server"]["requests"], 1) << "counted since the previous line";
    EXPECT_GT(one["utc_timestamp_ms"].get<u64>(), 1'600'000'000'000u);
    EXPECT_EQ(get("/vm/config")["metrics"]["metrics_path"], path);
}

TEST_F(ApiControllerTest, LoggerWritesToItsFileAtItsLevel)
{
    auto path = m_dir + "/log";
    auto previous = spdlog::default_logger();
    EXPECT_CONTAINS(fault("PUT", "/logger", R"({"level": "Loud"})"), "\"Loud\" is not one of");
    EXPECT_CONTAINS(fault("PUT", "/logger", R"({"module": "api_server"})"), "module");
    EXPECT_CONTAINS(fault("PUT", "/logger", R"({"show_log_origin": true})"), "source location");
    EXPECT_CONTAINS(fault("PUT", "/logger", Json { { "log_path", m_kernel + "/log" } }.dump()), "log_path");
    expect_no_content("PUT", "/logger", Json { { "log_path", path }, { "level", "Warning" }, { "show_level", true } }.dump());
    spdlog::info("not at this level");
    spdlog::warn("the line for the file");
    spdlog::default_logger()->flush();
    spdlog::set_default_logger(previous);
    std::stringstream text;
    text << std::ifstream(path).rdbuf();
    EXPECT_CONTAINS(text.str(), "[vm-7:warning] the line for the file");
    EXPECT_EQ(text.str().find("not at this level"), std::string::npos);
    EXPECT_EQ(get("/vm/config")["logger"]["level"], "Warning");
}

} // namespace
