#include <gtest/gtest.h>

#include <vector>

#include "emu/pic_pair.h"
#include "emu/port_window.h"

using namespace kasou;
using namespace kasou::emu;

namespace {

// A pair initialized the way Linux's init_8259A() does it: edge triggered, cascade on IR2,
// vectors 0x20 and 0x28, 8086 mode, normal EOI, everything unmasked.
struct Pic {
    std::vector<bool> intr_changes;
    PicPair pair { [this](bool level) { intr_changes.push_back(level); } };

    explicit Pic(u8 master_icw4 = 0x01, u8 slave_icw4 = 0x01)
    {
        pair.write_port(0x20, 0x11);
        pair.write_port(0x21, 0x20);
        pair.write_port(0x21, 0x04);
        pair.write_port(0x21, master_icw4);
        pair.write_port(0xa0, 0x11);
        pair.write_port(0xa1, 0x28);
        pair.write_port(0xa1, 0x02);
        pair.write_port(0xa1, slave_icw4);
        pair.write_port(0x21, 0x00);
        pair.write_port(0xa1, 0x00);
    }
    void pulse(u32 irq)
    {
        pair.set_irq(irq, true);
        pair.set_irq(irq, false);
    }
    void eoi_master() { pair.write_port(0x20, 0x20); }
    void eoi_slave() { pair.write_port(0xa0, 0x20); }
    u8 isr(u16 base)
    {
        pair.write_port(base, 0x0b);
        return pair.read_port(base);
    }
    u8 irr(u16 base)
    {
        pair.write_port(base, 0x0a);
        return pair.read_port(base);
    }
};

} // namespace

TEST(PicPair, EdgeRequestGivesVectorAndIntrFollows)
{
    Pic pic;
    EXPECT_FALSE(pic.pair.interrupt_pending());
    pic.pulse(4);
    EXPECT_TRUE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.irr(0x20), 0x10);
    EXPECT_EQ(pic.pair.acknowledge(), 0x24);
    EXPECT_FALSE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.isr(0x20), 0x10);
    EXPECT_EQ(pic.irr(0x20), 0x00) << "an edge request leaves IRR at INTA";
    pic.eoi_master();
    EXPECT_EQ(pic.isr(0x20), 0x00);
    EXPECT_EQ(pic.intr_changes, (std::vector<bool> { true, false }));
}

TEST(PicPair, EdgeNeedsRisingEdgeAgain)
{
    Pic pic;
    pic.pair.set_irq(3, true);
    EXPECT_EQ(pic.pair.acknowledge(), 0x23);
    pic.eoi_master();
    pic.pair.set_irq(3, true); // still high: no new edge
    EXPECT_FALSE(pic.pair.interrupt_pending());
    pic.pair.set_irq(3, false);
    pic.pair.set_irq(3, true);
    EXPECT_TRUE(pic.pair.interrupt_pending());
}

TEST(PicPair, CascadeDeliversSlaveVectorAndNeedsBothEois)
{
    Pic pic;
    pic.pulse(12);
    EXPECT_TRUE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.pair.acknowledge(), 0x2c);
    EXPECT_EQ(pic.isr(0xa0), 0x10);
    EXPECT_EQ(pic.isr(0x20), 0x04) << "the cascade input is in service on the master";
    pic.pulse(9);
    EXPECT_FALSE(pic.pair.interrupt_pending()) << "IR2 in service blocks the slave (not fully nested)";
    pic.eoi_slave();
    EXPECT_FALSE(pic.pair.interrupt_pending()) << "master still has IR2 in service";
    pic.eoi_master();
    EXPECT_TRUE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.pair.acknowledge(), 0x29);
}

TEST(PicPair, FixedPriorityAndNesting)
{
    Pic pic;
    pic.pulse(5);
    pic.pulse(1);
    EXPECT_EQ(pic.pair.acknowledge(), 0x21) << "IR1 outranks IR5";
    EXPECT_FALSE(pic.pair.interrupt_pending()) << "IR5 waits while IR1 is in service";
    pic.pulse(0);
    EXPECT_TRUE(pic.pair.interrupt_pending()) << "IR0 nests over IR1";
    EXPECT_EQ(pic.pair.acknowledge(), 0x20);
    pic.eoi_master(); // non-specific: ends IR0, the highest in service
    EXPECT_EQ(pic.isr(0x20), 0x02);
    pic.eoi_master();
    EXPECT_EQ(pic.pair.acknowledge(), 0x25);
}

TEST(PicPair, SpecificEoiAndRotation)
{
    Pic pic;
    pic.pulse(6);
    EXPECT_EQ(pic.pair.acknowledge(), 0x26);
    pic.pulse(2 + 1);
    EXPECT_EQ(pic.pair.acknowledge(), 0x23);
    pic.pair.write_port(0x20, 0x66); // specific EOI for IR6
    EXPECT_EQ(pic.isr(0x20), 0x08);
    pic.pair.write_port(0x20, 0xe3); // rotate on specific EOI for IR3: IR3 lowest, IR4 highest
    EXPECT_EQ(pic.isr(0x20), 0x00);
    pic.pulse(3);
    pic.pulse(5);
    EXPECT_EQ(pic.pair.acknowledge(), 0x25) << "after rotation IR5 outranks IR3";
    pic.pair.write_port(0x20, 0xa0); // rotate on non-specific EOI: IR5 lowest
    pic.pulse(6);
    EXPECT_EQ(pic.pair.acknowledge(), 0x26);
    pic.eoi_master();
    EXPECT_EQ(pic.pair.acknowledge(), 0x23);
    pic.pair.write_port(0x20, 0xc4); // set priority: IR4 lowest, IR5 highest
    pic.eoi_master();
    pic.pulse(4);
    pic.pulse(0);
    EXPECT_EQ(pic.pair.acknowledge(), 0x20) << "IR0 ranks above IR4 once IR4 is lowest";
}

TEST(PicPair, MaskingHoldsRequestsUntilUnmasked)
{
    Pic pic;
    pic.pair.write_port(0x21, 0x10);
    pic.pulse(4);
    EXPECT_FALSE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.pair.read_port(0x21), 0x10);
    pic.pair.write_port(0x21, 0x00);
    EXPECT_TRUE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.pair.acknowledge(), 0x24);
    pic.pair.write_port(0x21, 0x04); // masking the cascade input hides the slave
    pic.eoi_master();
    pic.pulse(10);
    EXPECT_FALSE(pic.pair.interrupt_pending());
}

TEST(PicPair, LevelTriggeredThroughElcr)
{
    Pic pic;
    pic.pair.write_port(0x4d1, 0xff);
    EXPECT_EQ(pic.pair.read_port(0x4d1), 0xde) << "IRQ 8 and 13 are edge only";
    pic.pair.write_port(0x4d0, 0xff);
    EXPECT_EQ(pic.pair.read_port(0x4d0), 0xf8) << "IRQ 0-2 are edge only";
    pic.pair.set_irq(11, true);
    EXPECT_EQ(pic.pair.acknowledge(), 0x2b);
    EXPECT_EQ(pic.irr(0xa0), 0x08) << "a level request stays in IRR while the line is high";
    pic.eoi_slave();
    pic.eoi_master();
    EXPECT_TRUE(pic.pair.interrupt_pending()) << "still asserted: requests again after EOI";
    pic.pair.set_irq(11, false);
    EXPECT_EQ(pic.irr(0xa0), 0x00) << "deasserting withdraws the level request";
    EXPECT_TRUE(pic.pair.interrupt_pending()) << "the master latched the cascade edge";
    EXPECT_EQ(pic.pair.acknowledge(), 0x2f) << "so the slave answers its spurious IRQ 15";
}

TEST(PicPair, SpuriousVectorsWhenRequestVanishes)
{
    Pic pic;
    EXPECT_EQ(pic.pair.acknowledge(), 0x27) << "nothing pending: IRQ 7";
    EXPECT_EQ(pic.isr(0x20), 0x00) << "a spurious IRQ 7 is not put in service";
    pic.pair.write_port(0x4d1, 0x08);
    pic.pair.set_irq(11, true);
    EXPECT_TRUE(pic.pair.interrupt_pending());
    pic.pair.write_port(0xa1, 0x08); // slave masks it after the master latched IR2
    EXPECT_EQ(pic.pair.acknowledge(), 0x2f) << "slave answers its IRQ 15";
    EXPECT_EQ(pic.isr(0xa0), 0x00);
}

TEST(PicPair, AutoEoiLeavesNothingInService)
{
    Pic pic(0x03, 0x03);
    pic.pulse(1);
    EXPECT_EQ(pic.pair.acknowledge(), 0x21);
    EXPECT_EQ(pic.isr(0x20), 0x00);
    pic.pulse(5);
    EXPECT_EQ(pic.pair.acknowledge(), 0x25) << "no EOI needed";
}

TEST(PicPair, PollModeReadsAndAcknowledges)
{
    Pic pic;
    pic.pulse(6);
    pic.pair.write_port(0x20, 0x0c);
    EXPECT_EQ(pic.pair.read_port(0x20), 0x86);
    EXPECT_EQ(pic.isr(0x20), 0x40);
    pic.pair.write_port(0x20, 0x0c);
    EXPECT_EQ(pic.pair.read_port(0x20), 0x00) << "no request: bit 7 clear";
}

TEST(PicPair, SpecialMaskModeLetsLowerLevelsIn)
{
    Pic pic;
    pic.pulse(2 + 1);
    EXPECT_EQ(pic.pair.acknowledge(), 0x23);
    pic.pulse(6);
    EXPECT_FALSE(pic.pair.interrupt_pending());
    pic.pair.write_port(0x21, 0x08); // mask IR3, which is in service
    pic.pair.write_port(0x20, 0x68); // OCW3: set special mask mode
    EXPECT_TRUE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.pair.acknowledge(), 0x26);
}

TEST(PicPair, SpecialFullyNestedLetsHigherSlaveRequestsThrough)
{
    Pic pic(0x11, 0x01);
    pic.pulse(12);
    EXPECT_EQ(pic.pair.acknowledge(), 0x2c);
    pic.pulse(9);
    EXPECT_TRUE(pic.pair.interrupt_pending()) << "IR9 outranks IR12 on the slave";
    EXPECT_EQ(pic.pair.acknowledge(), 0x29);
}

TEST(PicPair, ReinitializationClearsState)
{
    Pic pic;
    pic.pulse(4);
    EXPECT_EQ(pic.pair.acknowledge(), 0x24);
    pic.pair.write_port(0x21, 0xff);
    pic.pair.write_port(0x20, 0x11);
    pic.pair.write_port(0x21, 0x40);
    pic.pair.write_port(0x21, 0x04);
    pic.pair.write_port(0x21, 0x01);
    EXPECT_EQ(pic.pair.read_port(0x21), 0x00);
    EXPECT_EQ(pic.isr(0x20), 0x00);
    pic.pulse(1);
    EXPECT_EQ(pic.pair.acknowledge(), 0x41);
}

TEST(PicPair, IgnoresOutOfRangeLinesAndPorts)
{
    Pic pic;
    pic.pair.set_irq(16, true);
    pic.pair.set_irq(0xffff'ffff, true);
    EXPECT_FALSE(pic.pair.interrupt_pending());
    EXPECT_EQ(pic.pair.read_port(0x22), 0xff);
    auto window = port_window(std::shared_ptr<PicPair>(&pic.pair, [](PicPair*) {}), 0x20);
    u8 data[2] = { 0xff, 0xff };
    window->write(1, std::span<u8 const>(data, 1));
    pic.pulse(1);
    EXPECT_FALSE(pic.pair.interrupt_pending()) << "the window reached OCW1 at port 0x21";
}
