#include <gtest/gtest.h>

#include "devices/boot_timer.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"

using namespace kasou;
using namespace kasou::devices;

namespace {

u8 in(bus::BusDevice& device, u64 offset)
{
    u8 value = 0;
    device.read(offset, std::span(&value, 1));
    return value;
}

void out(bus::BusDevice& device, u64 offset, u8 value) { device.write(offset, std::span(&value, 1)); }

} // namespace

TEST(DebugExit, StatusFollowsQemuConvention)
{
    std::vector<u32> values;
    DebugExit device([&](u32 value) { values.push_back(value); });
    out(device, 0, 0);
    u8 const dword[4] = { 0x21, 0, 0, 0 };
    device.write(0, dword);
    EXPECT_EQ(values, (std::vector<u32> { 0, 0x21 }));
    EXPECT_EQ(DebugExit::exit_status(0), 1);
    EXPECT_EQ(DebugExit::exit_status(0x21), 0x43);
    EXPECT_EQ(DebugExit::exit_status(0x80), 1) << "truncated to 8 bits like exit(3)";
}

TEST(BootTimer, ReportsMarkerAndElapsedTime)
{
    auto start = BootTimer::Clock::now() - std::chrono::milliseconds(5);
    u8 seen = 0;
    BootTimer::Clock::duration elapsed {};
    BootTimer timer(start, [&](u8 marker, BootTimer::Clock::duration since) {
        seen = marker;
        elapsed = since;
    });
    out(timer, 0, 7);
    EXPECT_EQ(seen, 7);
    EXPECT_GE(elapsed, std::chrono::milliseconds(5));
}

TEST(I8042, ResetCommandPullsTheResetLine)
{
    int resets = 0;
    I8042 controller([&] { ++resets; }, [] {});
    out(controller, 4, 0xAA);
    EXPECT_EQ(in(controller, 4) & 1, 1) << "output buffer full";
    EXPECT_EQ(in(controller, 0), 0x55) << "self test passed";
    EXPECT_EQ(in(controller, 4) & 1, 0);
    out(controller, 4, 0x60);
    out(controller, 0, 0x47);
    out(controller, 4, 0x20);
    EXPECT_EQ(in(controller, 0), 0x47) << "command byte written and read back";
    EXPECT_EQ(resets, 0);
    out(controller, 4, 0xFE);
    EXPECT_EQ(resets, 1);
    out(controller, 4, 0xD1);
    out(controller, 0, 0x00);
    EXPECT_EQ(resets, 2) << "output port bit 0 cleared";
}

TEST(I8042, KeyboardAcknowledgesCommandsAndSendsCtrlAltDel)
{
    int interrupts = 0;
    I8042 controller([] {}, [&] { ++interrupts; });
    out(controller, 0, 0xF2); // a command to the keyboard (identify)
    EXPECT_EQ(interrupts, 1);
    EXPECT_EQ(in(controller, 0), 0xFA) << "acknowledged";
    EXPECT_EQ(in(controller, 4) & 1, 0);

    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_EQ(interrupts, 2);
    std::vector<u8> bytes;
    while (in(controller, 4) & 1)
        bytes.push_back(in(controller, 0));
    EXPECT_EQ(bytes, (std::vector<u8> { 0x14, 0x11, 0xE0, 0x71 })) << "Ctrl, Alt, Del in scan code set 2";
    EXPECT_EQ(interrupts, 5) << "one more interrupt for each byte left after a read";

    // The guest turns the keyboard interrupt off: the keys wait without interrupting it.
    out(controller, 4, 0x60);
    out(controller, 0, 0x44);
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_EQ(interrupts, 5);
    // A guest that never reads fills the buffer; a sequence that does not fit whole is refused.
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(controller.send_ctrl_alt_del());
    auto refused = controller.send_ctrl_alt_del();
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("buffer is full"), std::string::npos);
}

TEST(CmosRtc, ReportsTimeInBcdAndMemorySizes)
{
    std::time_t fixed = 1700000000; // 2023-11-14 22:13:20 UTC
    CmosRtc rtc(512 * MiB, 2 * GiB, [&] { return fixed; });
    auto reg = [&](u8 index) {
        out(rtc, 0, index | 0x80); // with the NMI mask bit, as Linux writes it
        return in(rtc, 1);
    };
    EXPECT_EQ(reg(0x00), 0x20);
    EXPECT_EQ(reg(0x02), 0x13);
    EXPECT_EQ(reg(0x04), 0x22);
    EXPECT_EQ(reg(0x07), 0x14);
    EXPECT_EQ(reg(0x08), 0x11);
    EXPECT_EQ(reg(0x09), 0x23);
    EXPECT_EQ(reg(0x32), 0x20);
    EXPECT_EQ(reg(0x0A) & 0x80, 0) << "never an update in progress";
    EXPECT_EQ(reg(0x0B) & 0x02, 0x02) << "24-hour mode";
    EXPECT_EQ(reg(0x0D), 0x80);
    u32 above_16m = reg(0x34) | (reg(0x35) << 8);
    EXPECT_EQ(above_16m, (512 * MiB - 16 * MiB) / (64 * KiB));
    u32 above_4g = reg(0x5B) | (reg(0x5C) << 8) | (reg(0x5D) << 16);
    EXPECT_EQ(above_4g, 2 * GiB / (64 * KiB));
    out(rtc, 0, 0x40);
    out(rtc, 1, 0x99);
    EXPECT_EQ(reg(0x40), 0x99) << "spare CMOS bytes keep what is written";
}
