#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include "container/config.h"
#include "container/spec_template.h"

using namespace kasou;
using namespace kasou::container;
using Json = nlohmann::json;

namespace {

Json minimal()
{
    return Json::parse(R"({
        "ociVersion": "1.2.0",
        "process": { "user": { "uid": 0, "gid": 0 }, "args": ["sh"], "cwd": "/" },
        "root": { "path": "rootfs" }
    })");
}

std::string error_of(Json const& json)
{
    auto config = parse_config(json.dump());
    return config ? std::string("(parsed)") : config.error().to_string();
}

} // namespace

TEST(ConfigParser, MinimalConfig)
{
    auto config = parse_config(minimal().dump());
    ASSERT_TRUE(config) << config.error().to_string();
    EXPECT_EQ(config->root.path, "rootfs");
    ASSERT_TRUE(config->process);
    EXPECT_EQ(config->process->args, std::vector<std::string> { "sh" });
    EXPECT_FALSE(config->process->capabilities);
}

TEST(ConfigParser, DefaultSpecParsesInBothForms)
{
    for (bool rootless : { false, true }) {
        auto config = parse_config(default_spec(rootless, 1000, 1000));
        ASSERT_TRUE(config) << config.error().to_string();
        EXPECT_EQ(config->hostname, "kasou");
        EXPECT_EQ(config->linux.find_namespace(NamespaceType::User) != nullptr, rootless);
        EXPECT_EQ(config->mounts.size(), 6u);
    }
}

TEST(ConfigParser, FullFieldsAreTyped)
{
    Json json = minimal();
    json["process"]["user"]["additionalGids"] = { 5, 6 };
    json["process"]["user"]["umask"] = 18;
    json["process"]["capabilities"] = { { "bounding", { "CAP_KILL", "CAP_SYS_ADMIN" } }, { "ambient", { "CAP_KILL" } } };
    json["process"]["rlimits"] = Json::array({ { { "type", "RLIMIT_NOFILE" }, { "soft", 10 }, { "hard", 20 } } });
    json["process"]["oomScoreAdj"] = -500;
    json["hostname"] = "box";
    json["linux"] = {
        { "namespaces", Json::array({ { { "type", "uts" } }, { { "type", "network" }, { "path", "/proc/1/ns/net" } } }) },
        { "resources", { { "memory", { { "limit", 1 << 24 }, { "swap", 1 << 25 } } }, { "pids", { { "limit", 32 } } },
                           { "cpu", { { "shares", 512 }, { "quota", 50000 }, { "period", 100000 }, { "cpus", "0" } } } } },
        { "sysctl", { { "net.ipv4.ip_forward", "1" } } },
        { "seccomp", { { "defaultAction", "SCMP_ACT_ALLOW" },
                         { "syscalls", Json::array({ { { "names", { "mkdir" } }, { "action", "SCMP_ACT_ERRNO" }, { "errnoRet", 1 } } }) } } },
    };
    json["hooks"] = { { "createRuntime", Json::array({ { { "path", "/bin/true" }, { "timeout", 3 } } }) } };
    json["somethingNew"] = { { "ignored", true } }; // unknown properties are ignored (config.md)
    auto config = parse_config(json.dump());
    ASSERT_TRUE(config) << config.error().to_string();
    auto const& process = *config->process;
    EXPECT_EQ(process.user.additional_gids, (std::vector<u32> { 5, 6 }));
    EXPECT_EQ(process.user.umask, 18u);
    EXPECT_EQ(process.capabilities->bounding, (u64(1) << 5) | (u64(1) << 21));
    EXPECT_EQ(process.capabilities->ambient, u64(1) << 5);
    EXPECT_EQ(process.capabilities->effective, 0u);
    ASSERT_EQ(process.rlimits.size(), 1u);
    EXPECT_EQ(process.rlimits[0].resource, RLIMIT_NOFILE);
    EXPECT_EQ(process.oom_score_adj, -500);
    EXPECT_EQ(config->linux.find_namespace(NamespaceType::Network)->path, "/proc/1/ns/net");
    EXPECT_EQ(config->linux.resources.memory_limit, 1 << 24);
    EXPECT_EQ(config->linux.resources.pids_limit, 32);
    EXPECT_EQ(config->linux.resources.cpu_quota, 50000);
    EXPECT_EQ(config->linux.seccomp->syscalls[0].action, SeccompAction::Errno);
    EXPECT_EQ(config->linux.seccomp->syscalls[0].errno_ret, 1u);
    EXPECT_EQ(config->hooks.create_runtime[0].timeout, 3);
}

TEST(ConfigParser, ErrorsNameTheField)
{
    struct Case {
        char const* pointer;
        Json value;
        char const* expected;
    };
    Case const cases[] = {
        { "/ociVersion", "2.0.0", "ociVersion: 2.0.0 is not a 1.x version" },
        { "/process/user/uid", "root", "process.user.uid: expected an unsigned integer, got string" },
        { "/process/args", Json::array(), "process.args: required and must not be empty" },
        { "/process/cwd", "relative", "process.cwd: \"relative\" is not an absolute path" },
        { "/process/capabilities", { { "bounding", { "CAP_KILL", "CAP_FOO" } } }, "process.capabilities.bounding[1]: unknown capability CAP_FOO" },
        { "/process/rlimits", Json::array({ { { "type", "RLIMIT_BOGUS" }, { "soft", 1 }, { "hard", 1 } } }), "process.rlimits[0].type: unknown resource limit RLIMIT_BOGUS" },
        { "/process/rlimits", Json::array({ { { "type", "RLIMIT_NOFILE" }, { "soft", 2 }, { "hard", 1 } } }), "soft limit 2 is above the hard limit 1" },
        { "/process/oomScoreAdj", 5000, "process.oomScoreAdj: 5000 is above the largest allowed value 1000" },
        { "/root", nullptr, "root: required" },
        { "/linux", { { "namespaces", Json::array({ { { "type", "bogus" } } }) } }, "linux.namespaces[0].type: unknown namespace \"bogus\"" },
        { "/linux", { { "namespaces", Json::array({ { { "type", "pid" } }, { { "type", "pid" } } }) } }, "the pid namespace is given twice" },
        { "/linux", { { "uidMappings", Json::array({ { { "containerID", 0 }, { "hostID", 1000 }, { "size", 1 } } }) } }, "need a user namespace" },
        { "/linux", { { "resources", { { "memory", { { "limit", 100 } } } } } }, "linux.resources.memory.limit: 100 bytes is too small" },
        { "/linux", { { "resources", { { "cpu", { { "shares", 1 } } } } } }, "linux.resources.cpu.shares: must be at least 2" },
        { "/linux", { { "intelRdt", { { "closID", "x" } } } }, "linux.intelRdt: not supported by kasou" },
        { "/linux", { { "seccomp", { { "defaultAction", "SCMP_ACT_BOGUS" } } } }, "linux.seccomp.defaultAction: unknown seccomp action SCMP_ACT_BOGUS" },
        { "/linux", { { "seccomp", { { "defaultAction", "SCMP_ACT_NOTIFY" } } } }, "linux.seccomp.listenerPath: required" },
        { "/hostname", "box", "needs a uts namespace" },
        { "/mounts", Json::array({ { { "destination", "tmp" } } }), "mounts[0].destination: \"tmp\" is not an absolute path" },
        { "/hooks", { { "poststop", Json::array({ { { "path", "/bin/x" }, { "timeout", 0 } } }) } }, "hooks.poststop[0].timeout: 0 is outside" },
    };
    for (auto const& c : cases) {
        Json json = minimal();
        if (c.value.is_null())
            json.erase(std::string(c.pointer).substr(1));
        else
            json[Json::json_pointer(c.pointer)] = c.value;
        auto text = error_of(json);
        EXPECT_NE(text.find(c.expected), std::string::npos) << c.pointer << ": " << text;
    }
}

TEST(ConfigParser, NotJsonIsOneError)
{
    auto config = parse_config("{\"ociVersion\": ");
    ASSERT_FALSE(config);
    EXPECT_EQ(config.error().to_string(), "config.json: not valid JSON");
    auto array = parse_config("[]");
    ASSERT_FALSE(array);
    EXPECT_EQ(array.error().to_string(), "config.json: expected an object, got array");
}

TEST(ConfigParser, ProcessAndResourcesAlone)
{
    auto process = parse_process(R"({"user":{"uid":1,"gid":2},"args":["ls"],"cwd":"/tmp","terminal":true})");
    ASSERT_TRUE(process) << process.error().to_string();
    EXPECT_TRUE(process->terminal);
    EXPECT_EQ(process->user.gid, 2u);
    auto resources = parse_resources(R"({"pids":{"limit":5},"memory":{"limit":-1}})");
    ASSERT_TRUE(resources) << resources.error().to_string();
    EXPECT_EQ(resources->pids_limit, 5);
    EXPECT_EQ(resources->memory_limit, -1);
    auto bad = parse_resources(R"({"pids":{"limit":"x"}})");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().to_string(), "resources.pids.limit: expected an integer, got string");
}
