#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "emu/ioapic.h"
#include "emu/pic_pair.h"
#include "emu/pit_8254.h"

using namespace kasou;
using namespace kasou::emu;

// Each model is driven into the middle of an operation, its state is moved into a fresh model (on
// another clock, for the PIT), and both are then driven the same way: they must answer alike.

namespace {

// A PIT on a clock the test moves, in PIT ticks from `origin`.
struct Pit {
    explicit Pit(u64 origin_ticks)
        : origin(Pit8254::ns_at(origin_ticks))
        , now_ns(origin)
    {
    }
    u64 origin;
    u64 now_ns;
    u32 pulses = 0;
    std::vector<std::optional<u64>> deadlines;
    Pit8254 pit { [this] { return now_ns; }, [this](bool level) { pulses += level; }, [this](std::optional<u64> deadline) { deadlines.push_back(deadline); } };

    void advance(u64 ticks) { now_ns = Pit8254::ns_at(Pit8254::ticks_at(now_ns) + ticks); }
    // The next deadline, in ticks from now.
    std::optional<u64> deadline_in()
    {
        auto deadline = pit.next_irq0_deadline();
        if (!deadline)
            return std::nullopt;
        return Pit8254::ticks_at(*deadline) - Pit8254::ticks_at(now_ns);
    }
    void program(u32 channel, u8 mode, u16 count)
    {
        pit.write_port(0x43, static_cast<u8>(channel << 6 | 0x30 | mode << 1));
        pit.write_port(static_cast<u16>(0x40 + channel), static_cast<u8>(count));
        pit.write_port(static_cast<u16>(0x40 + channel), static_cast<u8>(count >> 8));
    }
    // Everything a guest can read: the three counters (with whatever latches are pending) and
    // port 0x61's gate and OUT bits, read twice each so word access goes through both bytes.
    std::vector<u8> observe()
    {
        std::vector<u8> seen;
        for (u16 port : { 0x40, 0x40, 0x41, 0x41, 0x42, 0x42 })
            seen.push_back(pit.read_port(port));
        seen.push_back(pit.read_port(0x61) & 0x21);
        return seen;
    }
};

void expect_same_pit_behaviour(Pit& a, Pit& b)
{
    for (u64 step : { 0ull, 1ull, 7ull, 250ull, 999ull, 1000ull, 4321ull }) {
        a.advance(step);
        b.advance(step);
        EXPECT_EQ(a.deadline_in(), b.deadline_in()) << "after " << step;
        a.pit.update();
        b.pit.update();
        EXPECT_EQ(a.pulses, b.pulses) << "after " << step;
        EXPECT_EQ(a.observe(), b.observe()) << "after " << step;
    }
}

} // namespace

TEST(SavedState, PitRestoredMidCountOnAnotherClockCountsOnAlike)
{
    Pit a(1'000'000);
    a.program(0, 2, 1000);                  // rate generator, IRQ 0 every 1000 ticks
    a.program(2, 0, 5000);                  // one-shot on channel 2, gate still low: held
    a.pit.write_port(0x61, 0x01);           // gate 2 up: counts
    a.program(1, 3, 300);                   // square wave
    a.advance(437);
    a.pit.write_port(0x43, 0x00);           // latch channel 0's count
    (void)a.pit.read_port(0x40);            // read its low byte only: the high byte stays latched
    a.pit.write_port(0x43, 0xe8);           // read-back: latch channel 2's status, not its count
    a.pit.write_port(0x43, 0x40 | 0x20);    // channel 1: LSB-only access, mode 0, no count yet
    a.pulses = 0;

    Pit b(77'000'000'000ull);               // another clock, far from the first
    ASSERT_TRUE(b.pit.set_state(a.pit.state()));
    EXPECT_EQ(b.pit.state(), a.pit.state());
    ASSERT_FALSE(b.deadlines.empty());
    EXPECT_EQ(a.deadline_in(), b.deadline_in());
    expect_same_pit_behaviour(a, b);
}

TEST(SavedState, PitRestoredFromAClockAheadOfTheNewOne)
{
    Pit a(900'000'000'000ull);
    a.program(0, 2, 5000);
    a.advance(1234);
    Pit b(10);
    ASSERT_TRUE(b.pit.set_state(a.pit.state()));
    EXPECT_EQ(b.deadline_in(), std::optional<u64>(5000 - 1234));
    expect_same_pit_behaviour(a, b);
}

TEST(SavedState, PausedPitKeepsItsRemainingCountAndFiresNoBurst)
{
    Pit pit(1'000'000);
    pit.program(0, 2, 1000);
    pit.advance(400);
    pit.pit.update();
    pit.pulses = 0;
    pit.pit.pause();
    EXPECT_EQ(pit.deadlines.back(), std::nullopt); // the host timer is disarmed
    pit.advance(10'000'000);                       // about 8 s paused
    pit.pit.update();                              // a timer that fired anyway changes nothing
    EXPECT_EQ(pit.pulses, 0u);
    EXPECT_EQ(pit.deadlines.back(), std::nullopt);
    pit.pit.resume();
    EXPECT_EQ(pit.deadline_in(), std::optional<u64>(600));
    EXPECT_EQ(Pit8254::ticks_at(*pit.deadlines.back()) - Pit8254::ticks_at(pit.now_ns), 600u);
    pit.pit.write_port(0x43, 0x00);
    u16 count = static_cast<u16>(pit.pit.read_port(0x40) | pit.pit.read_port(0x40) << 8);
    EXPECT_EQ(count, 600);
    pit.advance(600);
    pit.pit.update();
    EXPECT_EQ(pit.pulses, 1u);
}

TEST(SavedState, PitRefusesImpossibleChannelStates)
{
    Pit pit(1000);
    pit.program(0, 2, 1000);
    auto good = pit.pit.state();
    for (auto spoil : std::vector<void (*)(Pit8254::State&)> {
             [](Pit8254::State& s) { s.channels[1].mode = 6; },
             [](Pit8254::State& s) { s.channels[0].access = 0; },
             [](Pit8254::State& s) { s.channels[2].reload = 0; },
             [](Pit8254::State& s) { s.channels[2].bcd = true, s.channels[2].reload = 10001; },
             [](Pit8254::State& s) { s.channels[0].phase = 3; },
         }) {
        auto bad = good;
        spoil(bad);
        auto result = pit.pit.set_state(bad);
        ASSERT_FALSE(result);
        EXPECT_NE(result.error().to_string().find("PIT channel"), std::string::npos) << result.error().to_string();
        EXPECT_EQ(pit.pit.state().channels, good.channels);
    }
}

namespace {

struct Pic {
    std::vector<bool> intr;
    PicPair pair { [this](bool level) { intr.push_back(level); } };
    void write(u16 port, u8 value) { pair.write_port(port, value); }
    std::vector<u8> observe()
    {
        std::vector<u8> seen;
        for (u16 port : { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1 })
            seen.push_back(pair.read_port(port));
        pair.write_port(0x20, 0x0b); // read ISR
        pair.write_port(0xa0, 0x0b);
        seen.push_back(pair.read_port(0x20));
        seen.push_back(pair.read_port(0xa0));
        pair.write_port(0x20, 0x0a); // back to IRR
        pair.write_port(0xa0, 0x0a);
        seen.push_back(pair.interrupt_pending());
        return seen;
    }
};

} // namespace

TEST(SavedState, PicPairRestoredMidInitializationAndInServiceAnswersAlike)
{
    Pic a;
    for (auto [port, value] : std::vector<std::pair<u16, u8>> { { 0x20, 0x11 }, { 0x21, 0x20 }, { 0x21, 0x04 }, { 0x21, 0x01 }, { 0xa0, 0x11 },
             { 0xa1, 0x28 }, { 0xa1, 0x02 }, { 0xa1, 0x01 }, { 0x21, 0x00 }, { 0xa1, 0x00 }, { 0x4d1, 0x02 } })
        a.write(port, value);
    a.pair.set_irq(1, true);  // keyboard: edge
    a.pair.set_irq(9, true);  // ACPI: level (ELCR bit 1 of the slave)
    a.pair.set_irq(4, true);
    ASSERT_EQ(a.pair.acknowledge(), 0x21); // IRQ 1 in service
    a.pair.set_irq(1, false);
    a.write(0x20, 0xc4);                   // set priority: IR4 lowest, so IR5.. rank highest
    a.write(0xa0, 0x11);                   // the slave starts a new initialization: ICW1 only
    a.write(0x20, 0x0c);                   // poll command pending on the master

    Pic b;
    ASSERT_TRUE(b.pair.set_state(a.pair.state()));
    EXPECT_EQ(b.pair.state(), a.pair.state());
    // IRQ 1 in service holds back the rest: the restored pair raises no INT.
    EXPECT_FALSE(a.pair.interrupt_pending());
    EXPECT_TRUE(b.intr.empty());
    EXPECT_FALSE(b.pair.interrupt_pending());
    // The poll read, then the rest of the slave's initialization, then service in both.
    EXPECT_EQ(a.pair.read_port(0x20), b.pair.read_port(0x20));
    for (auto [port, value] : std::vector<std::pair<u16, u8>> { { 0xa1, 0x30 }, { 0xa1, 0x02 }, { 0xa1, 0x01 }, { 0xa1, 0x00 } }) {
        a.write(port, value);
        b.write(port, value);
    }
    EXPECT_EQ(a.observe(), b.observe());
    for (int round = 0; round < 4; ++round) {
        a.pair.set_irq(12, round % 2 == 0);
        b.pair.set_irq(12, round % 2 == 0);
        EXPECT_EQ(a.pair.acknowledge(), b.pair.acknowledge()) << round;
        a.write(0x20, 0x20);
        b.write(0x20, 0x20);
        a.write(0xa0, 0x20);
        b.write(0xa0, 0x20);
        EXPECT_EQ(a.observe(), b.observe()) << round;
    }
}

TEST(SavedState, PicPairRefusesImpossibleStatesAndKeepsItsOwn)
{
    Pic pic;
    auto good = pic.pair.state();
    auto bad = good;
    bad.slave.init_step = 4;
    EXPECT_FALSE(pic.pair.set_state(bad));
    bad = good;
    bad.master.elcr = 0x01; // IRQ 0 is edge only
    auto result = pic.pair.set_state(bad);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("PIC master"), std::string::npos);
    bad = good;
    bad.master.vector_base = 0x21;
    EXPECT_FALSE(pic.pair.set_state(bad));
    EXPECT_EQ(pic.pair.state(), good);
}

namespace {

struct Apic {
    std::vector<std::pair<u32, MsiMessage>> delivered;
    std::vector<std::pair<u32, std::optional<MsiMessage>>> routes;
    Ioapic ioapic { [this](u32 pin, MsiMessage message) { delivered.emplace_back(pin, message); },
        [this](u32 pin, std::optional<MsiMessage> message) { routes.emplace_back(pin, message); } };
    void set_reg(u8 index, u32 value)
    {
        ioapic.write(0x00, std::span(reinterpret_cast<u8 const*>(&index), 1));
        ioapic.write(0x10, std::span(reinterpret_cast<u8 const*>(&value), 4));
    }
    u32 reg(u8 index)
    {
        ioapic.write(0x00, std::span(reinterpret_cast<u8 const*>(&index), 1));
        u32 value = 0;
        ioapic.read(0x10, std::span(reinterpret_cast<u8*>(&value), 4));
        return value;
    }
    void program(u32 pin, u64 entry)
    {
        set_reg(static_cast<u8>(0x11 + 2 * pin), static_cast<u32>(entry >> 32));
        set_reg(static_cast<u8>(0x10 + 2 * pin), static_cast<u32>(entry));
    }
};

constexpr u64 LEVEL = 1ull << 15;
constexpr u64 MASKED = 1ull << 16;

} // namespace

TEST(SavedState, IoapicRestoredWithRemoteIrrDeliversAlikeAfterEoi)
{
    Apic a;
    a.set_reg(0x00, 5u << 24);
    a.program(9, LEVEL | 0x51 | (1ull << 56));
    a.program(4, 0x34);
    a.program(11, MASKED | LEVEL | 0x60);
    a.ioapic.set_irq(9, true); // delivered: remote IRR set, still asserted
    a.ioapic.set_irq(11, true); // masked: waits
    a.set_reg(0x00, 0x12);      // leave IOREGSEL somewhere
    ASSERT_EQ(a.delivered.size(), 1u);

    Apic b;
    b.routes.clear();
    ASSERT_TRUE(b.ioapic.set_state(a.ioapic.state()));
    EXPECT_EQ(b.ioapic.state(), a.ioapic.state());
    EXPECT_TRUE(b.delivered.empty());
    ASSERT_EQ(b.routes.size(), Ioapic::PIN_COUNT); // every route reported for the GSI table
    for (u32 pin = 0; pin < Ioapic::PIN_COUNT; ++pin)
        EXPECT_EQ(b.routes[pin].second, a.ioapic.route(pin)) << pin;
    EXPECT_EQ(a.reg(0x00), b.reg(0x00));

    a.delivered.clear();
    for (Apic* apic : { &a, &b }) {
        apic->ioapic.eoi(0x51);               // pin 9 still high: delivered again
        apic->ioapic.set_irq(4, true);        // edge
        apic->program(11, LEVEL | 0x60);      // unmasking an asserted level pin delivers it
    }
    EXPECT_EQ(a.delivered, b.delivered);
    EXPECT_EQ(a.delivered.size(), 3u);
    EXPECT_EQ(a.ioapic.state(), b.ioapic.state());
}

TEST(SavedState, IoapicRefusesBitsNoGuestCanSet)
{
    Apic apic;
    auto good = apic.ioapic.state();
    auto bad = good;
    bad.table[3] = (1ull << 14) | 0x30; // remote IRR on an edge pin
    auto result = apic.ioapic.set_state(bad);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("redirection entry 3"), std::string::npos);
    bad = good;
    bad.lines = 1u << 24;
    EXPECT_FALSE(apic.ioapic.set_state(bad));
    bad = good;
    bad.table[0] = 1ull << 20; // reserved
    EXPECT_FALSE(apic.ioapic.set_state(bad));
    EXPECT_EQ(apic.ioapic.state(), good);
}
