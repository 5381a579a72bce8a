#include <gtest/gtest.h>

#include "devices/acpi_power.h"

using namespace kasou;
using namespace kasou::devices;

namespace {

struct Counts {
    int power_off { 0 };
    int reset { 0 };
};

void out(bus::BusDevice& device, u64 offset, u8 value) { device.write(offset, std::span(&value, 1)); }

} // namespace

TEST(AcpiPowerControl, SleepEnableWithS5PowersOff)
{
    Counts counts;
    AcpiPowerControl device([&] { ++counts.power_off; }, [&] { ++counts.reset; });
    u64 control = AcpiPowerControl::SLEEP_CONTROL - AcpiPowerControl::PORT;
    out(device, control, 5 << 2);            // SLP_TYP = 5 without SLP_EN: nothing yet
    out(device, control, (3 << 2) | 0x20);   // S3 with SLP_EN: kasou offers no S3
    out(device, AcpiPowerControl::SLEEP_STATUS - AcpiPowerControl::PORT, 0x80); // clearing WAK_STS
    EXPECT_EQ(counts.power_off, 0);
    out(device, control, (5 << 2) | 0x20);   // what Linux writes for S5
    EXPECT_EQ(counts.power_off, 1);
    EXPECT_EQ(counts.reset, 0);
}

TEST(AcpiPowerControl, ResetRegisterResetsOnItsValueOnly)
{
    Counts counts;
    AcpiPowerControl device([&] { ++counts.power_off; }, [&] { ++counts.reset; });
    u64 reset = AcpiPowerControl::RESET - AcpiPowerControl::PORT;
    out(device, reset, 0x06);
    EXPECT_EQ(counts.reset, 0);
    out(device, reset, AcpiPowerControl::RESET_VALUE);
    EXPECT_EQ(counts.reset, 1);
    EXPECT_EQ(counts.power_off, 0);
}

TEST(AcpiPowerControl, StatusReadsAwake)
{
    AcpiPowerControl device([] { }, [] { });
    u8 value = 0xFF;
    device.read(AcpiPowerControl::SLEEP_STATUS - AcpiPowerControl::PORT, std::span(&value, 1));
    EXPECT_EQ(value, 0) << "WAK_STS clear";
}
