#include <gtest/gtest.h>

#include "vmm/machine_config.h"
#include "vmm/stop_reason.h"

using namespace kasou;
using namespace kasou::vmm;

namespace {

std::string validation_error(MachineConfig const& config)
{
    auto result = config.validate(8 * GiB, 4);
    EXPECT_FALSE(result);
    return result ? std::string() : result.error().to_string();
}

} // namespace

TEST(MachineConfig, DefaultsAreValid)
{
    MachineConfig config;
    config.kernel_path = "guest.elf";
    EXPECT_TRUE(config.validate(8 * GiB, 4));
    EXPECT_EQ(config.effective_command_line(), "console=ttyS0 reboot=k panic=-1");
}

TEST(MachineConfig, RefusesAbsurdValues)
{
    MachineConfig config;
    config.kernel_path = "guest.elf";
    config.memory = 0;
    EXPECT_NE(validation_error(config).find("must not be zero"), std::string::npos);
    config.memory = 64 * GiB;
    EXPECT_NE(validation_error(config).find("more than this host's"), std::string::npos);
    config.memory = 4096 * 3 + 1;
    EXPECT_NE(validation_error(config).find("multiple of 4 KiB"), std::string::npos);
    config.memory = 64 * KiB;
    EXPECT_NE(validation_error(config).find("too small"), std::string::npos);
    config.memory = 64 * MiB;
    config.cpus = 0;
    EXPECT_NE(validation_error(config).find("at least 1"), std::string::npos);
    config.cpus = 5;
    EXPECT_NE(validation_error(config).find("more than KVM allows on this host (4)"), std::string::npos);
    config.cpus = 1;
    config.kernel_path.clear();
    EXPECT_NE(validation_error(config).find("no kernel"), std::string::npos);
}

TEST(MachineConfig, SmtNeedsAnEvenVcpuCount)
{
    MachineConfig config;
    config.kernel_path = "guest.elf";
    config.smt = true;
    config.cpus = 3;
    EXPECT_NE(validation_error(config).find("3 vCPUs cannot be paired"), std::string::npos);
    for (u32 cpus : { 1u, 2u, 4u }) {
        config.cpus = cpus;
        EXPECT_TRUE(config.validate(8 * GiB, 4)) << cpus;
    }
}

TEST(SerialSpec, ParsesEachKind)
{
    EXPECT_EQ(SerialSpec::parse("stdio").value().kind, SerialSpec::Kind::Stdio);
    auto file = SerialSpec::parse("file:/tmp/out").value();
    EXPECT_EQ(file.kind, SerialSpec::Kind::File);
    EXPECT_EQ(file.path, "/tmp/out");
    EXPECT_EQ(SerialSpec::parse("unix:/run/c.sock").value().kind, SerialSpec::Kind::Unix);
    EXPECT_FALSE(SerialSpec::parse("file:"));
    EXPECT_FALSE(SerialSpec::parse("tcp:1234"));
}

TEST(StopReason, StatusesAreDistinctAndEven)
{
    std::vector<int> seen;
    for (auto kind : { StopKind::PoweredOff, StopKind::Reboot, StopKind::TripleFault, StopKind::Signal, StopKind::VcpuFailure,
             StopKind::Halted, StopKind::GuestCrash }) {
        int status = exit_status_of(kind);
        EXPECT_EQ(status % 2, 0);
        EXPECT_NE(status, EXIT_CONFIGURATION_ERROR);
        EXPECT_EQ(std::count(seen.begin(), seen.end(), status), 0);
        seen.push_back(status);
    }
    EXPECT_EQ(StopReason::debug_exit(3).status, 7);
}
