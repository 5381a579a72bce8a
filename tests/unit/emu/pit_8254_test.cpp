#include <gtest/gtest.h>

#include <vector>

#include "emu/pit_8254.h"
#include "emu/port_window.h"

using namespace kasou;
using namespace kasou::emu;

namespace {

// A PIT on a clock the test moves, in whole PIT ticks from an arbitrary non-zero origin.
struct Pit {
    u64 origin = Pit8254::ns_at(1'000'000);
    u64 now_ns = origin;
    std::vector<bool> irq;
    std::vector<std::optional<u64>> deadlines;
    Pit8254 pit { [this] { return now_ns; }, [this](bool level) { irq.push_back(level); },
        [this](std::optional<u64> deadline) { deadlines.push_back(deadline); } };

    void at_tick(u64 ticks) { now_ns = Pit8254::ns_at(Pit8254::ticks_at(origin) + ticks); }
    u64 tick() const { return Pit8254::ticks_at(now_ns) - Pit8254::ticks_at(origin); }
    void program(u32 channel, u8 mode, u16 count, bool bcd = false)
    {
        pit.write_port(0x43, static_cast<u8>(channel << 6 | 0x30 | mode << 1 | (bcd ? 1 : 0)));
        pit.write_port(static_cast<u16>(0x40 + channel), static_cast<u8>(count));
        pit.write_port(static_cast<u16>(0x40 + channel), static_cast<u8>(count >> 8));
    }
    u16 latched(u32 channel)
    {
        pit.write_port(0x43, static_cast<u8>(channel << 6));
        u16 low = pit.read_port(static_cast<u16>(0x40 + channel));
        return static_cast<u16>(low | pit.read_port(static_cast<u16>(0x40 + channel)) << 8);
    }
    bool out2() { return pit.read_port(0x61) & 0x20; }
    // OUT of channel 2 at each tick from `from` up to `to` (exclusive).
    std::vector<bool> wave2(u64 from, u64 to)
    {
        std::vector<bool> wave;
        for (u64 t = from; t < to; ++t) {
            at_tick(t);
            wave.push_back(out2());
        }
        return wave;
    }
};

} // namespace

TEST(Pit8254, ClockConversionsRoundTrip)
{
    for (u64 ticks : { 0ull, 1ull, 1193ull, 1'193'182ull, 123'456'789'012ull }) {
        EXPECT_EQ(Pit8254::ticks_at(Pit8254::ns_at(ticks)), ticks);
        EXPECT_EQ(Pit8254::ticks_at(Pit8254::ns_at(ticks) - (ticks ? 1 : 0)), ticks ? ticks - 1 : 0);
    }
}

TEST(Pit8254, Mode2PeriodicTickPulsesIrq0OncePerPeriod)
{
    Pit pit;
    pit.program(0, 2, 1193);
    ASSERT_FALSE(pit.deadlines.empty());
    u64 start = Pit8254::ticks_at(pit.origin);
    EXPECT_EQ(pit.deadlines.back(), Pit8254::ns_at(start + 1193));
    EXPECT_EQ(pit.pit.next_irq0_deadline(), Pit8254::ns_at(start + 1193));
    pit.at_tick(1192);
    pit.pit.update();
    EXPECT_TRUE(pit.irq.empty()) << "no edge yet";
    pit.at_tick(1193);
    pit.pit.update();
    EXPECT_EQ(pit.irq, (std::vector<bool> { true, false }));
    EXPECT_EQ(pit.deadlines.back(), Pit8254::ns_at(start + 2 * 1193));
    pit.at_tick(1193 + 500);
    EXPECT_EQ(pit.latched(0), 1193 - 500);
    pit.at_tick(10 * 1193 + 7);
    pit.pit.update();
    EXPECT_EQ(pit.irq.size(), 4u) << "a late timer coalesces the missed edges into one pulse";
    EXPECT_EQ(pit.deadlines.back(), Pit8254::ns_at(start + 11 * 1193));
}

TEST(Pit8254, Mode2OutputGoesLowForOneTickBeforeReload)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x01);
    pit.program(2, 2, 4);
    EXPECT_EQ(pit.wave2(0, 9), (std::vector<bool> { true, true, true, false, true, true, true, false, true }));
}

TEST(Pit8254, Mode0InterruptOnTerminalCountFiresOnce)
{
    Pit pit;
    pit.program(0, 0, 100);
    u64 start = Pit8254::ticks_at(pit.origin);
    EXPECT_EQ(pit.pit.next_irq0_deadline(), Pit8254::ns_at(start + 100));
    pit.at_tick(40);
    EXPECT_EQ(pit.latched(0), 60);
    pit.at_tick(100);
    pit.pit.update();
    EXPECT_EQ(pit.irq, (std::vector<bool> { true, false }));
    EXPECT_EQ(pit.deadlines.back(), std::nullopt) << "one shot: nothing more to arm";
    pit.at_tick(103);
    EXPECT_EQ(pit.latched(0), 0xfffd) << "the counter wraps and keeps counting";
    pit.at_tick(500);
    pit.pit.update();
    EXPECT_EQ(pit.irq.size(), 2u);
}

TEST(Pit8254, Mode0OutputAndGateHoldsCount)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x01);
    pit.program(2, 0, 3);
    EXPECT_EQ(pit.wave2(0, 5), (std::vector<bool> { false, false, false, true, true }));
    pit.at_tick(10);
    pit.program(2, 0, 10);
    pit.at_tick(14);
    pit.pit.write_port(0x61, 0x00); // gate low: counting stops
    pit.at_tick(100);
    EXPECT_EQ(pit.latched(2), 6);
    EXPECT_FALSE(pit.out2());
    pit.pit.write_port(0x61, 0x01);
    pit.at_tick(105);
    EXPECT_EQ(pit.latched(2), 1);
    pit.at_tick(106);
    EXPECT_TRUE(pit.out2());
}

TEST(Pit8254, Mode0FirstByteOfNewCountStopsCounting)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x01);
    pit.program(2, 0, 2);
    pit.at_tick(5);
    EXPECT_TRUE(pit.out2());
    pit.pit.write_port(0x42, 0x10);
    EXPECT_FALSE(pit.out2());
    pit.at_tick(50);
    EXPECT_FALSE(pit.out2());
    pit.pit.write_port(0x42, 0x00);
    pit.at_tick(50 + 16);
    EXPECT_TRUE(pit.out2());
}

TEST(Pit8254, Mode1OneShotStartsOnGateEdge)
{
    Pit pit;
    pit.program(2, 1, 3);
    EXPECT_TRUE(pit.out2()) << "high until triggered";
    pit.at_tick(20);
    EXPECT_TRUE(pit.out2());
    pit.pit.write_port(0x61, 0x01);
    EXPECT_EQ(pit.wave2(20, 25), (std::vector<bool> { false, false, false, true, true }));
    pit.pit.write_port(0x61, 0x00);
    pit.at_tick(30);
    pit.pit.write_port(0x61, 0x01); // retrigger
    EXPECT_EQ(pit.wave2(30, 34), (std::vector<bool> { false, false, false, true }));
}

TEST(Pit8254, Mode3SquareWave)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x01);
    pit.program(2, 3, 4);
    EXPECT_EQ(pit.wave2(0, 8), (std::vector<bool> { true, true, false, false, true, true, false, false }));
    pit.at_tick(100);
    pit.program(2, 3, 5);
    EXPECT_EQ(pit.wave2(100, 110), (std::vector<bool> { true, true, true, false, false, true, true, true, false, false }))
        << "odd count: high one tick longer";
    pit.at_tick(101);
    EXPECT_EQ(pit.latched(2), 3);
    pit.pit.write_port(0x61, 0x00);
    EXPECT_TRUE(pit.out2()) << "gate low forces OUT high";
}

TEST(Pit8254, Mode4And5StrobeLowForOneTick)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x01);
    pit.program(2, 4, 3);
    EXPECT_EQ(pit.wave2(0, 6), (std::vector<bool> { true, true, true, false, true, true }));
    pit.pit.write_port(0x61, 0x00);
    pit.at_tick(10);
    pit.program(2, 5, 2);
    EXPECT_EQ(pit.wave2(10, 14), (std::vector<bool> { true, true, true, true })) << "mode 5 waits for the gate";
    pit.at_tick(14);
    pit.pit.write_port(0x61, 0x01);
    EXPECT_EQ(pit.wave2(14, 18), (std::vector<bool> { true, true, false, true }));
}

TEST(Pit8254, Mode4OnChannel0FiresOnTheStrobe)
{
    Pit pit;
    pit.program(0, 4, 10);
    EXPECT_EQ(pit.pit.next_irq0_deadline(), Pit8254::ns_at(Pit8254::ticks_at(pit.origin) + 11));
}

TEST(Pit8254, ZeroCountMeansLargest)
{
    Pit pit;
    pit.program(0, 2, 0);
    EXPECT_EQ(pit.pit.next_irq0_deadline(), Pit8254::ns_at(Pit8254::ticks_at(pit.origin) + 65536));
    pit.at_tick(1);
    EXPECT_EQ(pit.latched(0), 65535);
    pit.program(0, 2, 0, true);
    EXPECT_EQ(pit.pit.next_irq0_deadline(), Pit8254::ns_at(Pit8254::ticks_at(pit.origin) + 1 + 10000)) << "BCD 0 is 10000";
}

TEST(Pit8254, BcdCountsAndReads)
{
    Pit pit;
    pit.program(0, 2, 0x0100, true);
    EXPECT_EQ(pit.pit.next_irq0_deadline(), Pit8254::ns_at(Pit8254::ticks_at(pit.origin) + 100));
    pit.at_tick(1);
    EXPECT_EQ(pit.latched(0), 0x0099);
    pit.at_tick(58);
    EXPECT_EQ(pit.latched(0), 0x0042);
}

TEST(Pit8254, LatchFreezesValueUntilBothBytesAreRead)
{
    Pit pit;
    pit.program(0, 2, 1000);
    pit.at_tick(10);
    pit.pit.write_port(0x43, 0x00);
    pit.at_tick(200);
    pit.pit.write_port(0x43, 0x00); // ignored: the first latch is unread
    EXPECT_EQ(pit.pit.read_port(0x40), static_cast<u8>(990));
    pit.at_tick(300);
    EXPECT_EQ(pit.pit.read_port(0x40), 990 >> 8);
    EXPECT_EQ(pit.pit.read_port(0x40), static_cast<u8>(700)) << "then the live count, LSB first";
    EXPECT_EQ(pit.pit.read_port(0x40), 700 >> 8);
}

TEST(Pit8254, SingleByteAccessModes)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x01);
    pit.pit.write_port(0x43, 0xa4); // channel 2, MSB only, mode 2
    pit.pit.write_port(0x42, 0x02); // 0x200
    pit.at_tick(0x100);
    EXPECT_EQ(pit.pit.read_port(0x42), 0x01);
    pit.pit.write_port(0x43, 0x94); // channel 2, LSB only, mode 2
    pit.pit.write_port(0x42, 0x80);
    pit.at_tick(0x110);
    EXPECT_EQ(pit.pit.read_port(0x42), 0x70);
}

TEST(Pit8254, ReadBackLatchesStatusAndCountOfSelectedChannels)
{
    Pit pit;
    pit.pit.write_port(0x43, 0xb2); // channel 2: word access, mode 1, not yet triggered
    EXPECT_EQ(pit.pit.read_port(0x43), 0xff) << "the control register is write-only";
    pit.pit.write_port(0x42, 0x34);
    pit.pit.write_port(0x42, 0x12);
    pit.program(0, 2, 0x1000);
    pit.at_tick(0x10);
    pit.pit.write_port(0x43, 0xc0 | 0x08 | 0x02); // read back count and status of channels 0 and 2
    EXPECT_EQ(pit.pit.read_port(0x40), 0xb4) << "status first: OUT high, word, mode 2, binary";
    EXPECT_EQ(pit.pit.read_port(0x40), 0xf0);
    EXPECT_EQ(pit.pit.read_port(0x40), 0x0f);
    EXPECT_EQ(pit.pit.read_port(0x42), 0x80 | 0x40 | 0x32) << "null count: mode 1 count not loaded before a trigger";
    pit.pit.write_port(0x43, 0xc0 | 0x20 | 0x02); // status only of channel 0
    EXPECT_EQ(pit.pit.read_port(0x40), 0xb4);
    pit.at_tick(0x20);
    EXPECT_EQ(pit.pit.read_port(0x40), 0xe0) << "then the live count";
}

TEST(Pit8254, SystemControlPortBits)
{
    Pit pit;
    pit.pit.write_port(0x61, 0x03);
    EXPECT_EQ(pit.pit.read_port(0x61) & 0x03, 0x03);
    u8 refresh = pit.pit.read_port(0x61) & 0x10;
    pit.now_ns += 15'085;
    EXPECT_NE(pit.pit.read_port(0x61) & 0x10, refresh) << "refresh bit toggles every 15 us";
    auto window = port_window(std::shared_ptr<Pit8254>(&pit.pit, [](Pit8254*) {}), 0x61);
    u8 value = 0;
    window->read(0, std::span(&value, 1));
    EXPECT_EQ(value & 0x03, 0x03);
}
