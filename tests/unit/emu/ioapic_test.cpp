#include <gtest/gtest.h>

#include <vector>

#include "emu/ioapic.h"

using namespace kasou;
using namespace kasou::emu;

namespace {

struct Delivery {
    u32 pin;
    MsiMessage message;
    bool operator==(Delivery const&) const = default;
};

struct Apic {
    std::vector<Delivery> delivered;
    std::vector<std::pair<u32, std::optional<MsiMessage>>> routes;
    Ioapic ioapic { [this](u32 pin, MsiMessage message) { delivered.push_back({ pin, message }); },
        [this](u32 pin, std::optional<MsiMessage> message) { routes.emplace_back(pin, message); } };

    void write32(u64 offset, u32 value) { ioapic.write(offset, std::span(reinterpret_cast<u8 const*>(&value), 4)); }
    u32 read32(u64 offset)
    {
        u32 value = 0;
        ioapic.read(offset, std::span(reinterpret_cast<u8*>(&value), 4));
        return value;
    }
    u32 reg(u8 index)
    {
        write32(0x00, index);
        return read32(0x10);
    }
    void set_reg(u8 index, u32 value)
    {
        write32(0x00, index);
        write32(0x10, value);
    }
    void program(u32 pin, u64 entry)
    {
        set_reg(static_cast<u8>(0x11 + 2 * pin), static_cast<u32>(entry >> 32));
        set_reg(static_cast<u8>(0x10 + 2 * pin), static_cast<u32>(entry));
    }
};

constexpr u64 LEVEL = 1ull << 15;
constexpr u64 MASKED = 1ull << 16;
constexpr u64 REMOTE_IRR = 1ull << 14;

} // namespace

TEST(Ioapic, IdentificationRegisters)
{
    Apic apic;
    EXPECT_EQ(apic.reg(0x01), 0x0017'0020u) << "24 entries, version 0x20";
    apic.set_reg(0x00, 0x0f00'0000 | 0xf0ff'ffff);
    EXPECT_EQ(apic.reg(0x00), 0x0f00'0000u) << "ID is bits 24-27";
    EXPECT_EQ(apic.reg(0x02), 0x0f00'0000u) << "arbitration ID follows the ID";
    EXPECT_EQ(apic.reg(0x10 + 2 * 23), MASKED) << "entries start masked";
    EXPECT_EQ(apic.reg(0x40), 0u) << "past the table";
    EXPECT_EQ(apic.read32(0x20), 0u);
}

TEST(Ioapic, EdgePinDeliversItsMsiOnEachRisingEdge)
{
    Apic apic;
    apic.program(4, 0x0300'0000'0000'0000ull | 0x31);
    ASSERT_EQ(apic.routes.size(), 1u);
    MsiMessage expected { 0xfee0'3000, 0x31 };
    EXPECT_EQ(apic.routes[0].second, expected);
    apic.ioapic.set_irq(4, true);
    apic.ioapic.set_irq(4, true);
    apic.ioapic.set_irq(4, false);
    apic.ioapic.set_irq(4, true);
    EXPECT_EQ(apic.delivered, (std::vector<Delivery> { { 4, expected }, { 4, expected } }));
    EXPECT_EQ(apic.ioapic.redirection_entry(4) & REMOTE_IRR, 0u) << "edge pins have no remote IRR";
}

TEST(Ioapic, MsiCarriesDeliveryModeDestinationModeAndTrigger)
{
    Apic apic;
    // Lowest priority (001), logical destination, level, destination 0x0c.
    apic.program(9, 0x0c00'0000'0000'0000ull | LEVEL | (1ull << 11) | 0x100 | 0x41);
    EXPECT_EQ(apic.ioapic.route(9), (MsiMessage { 0xfee0'c004, 0x8141 }));
    apic.program(9, MASKED | 0x41);
    EXPECT_EQ(apic.ioapic.route(9), std::nullopt);
    EXPECT_EQ(apic.routes.back(), (std::pair<u32, std::optional<MsiMessage>> { 9, std::nullopt })) << "masking withdraws the route";
}

TEST(Ioapic, MaskedEdgeIsLost)
{
    Apic apic;
    apic.program(3, MASKED | 0x33);
    apic.ioapic.set_irq(3, true);
    apic.program(3, 0x33);
    EXPECT_TRUE(apic.delivered.empty());
}

TEST(Ioapic, LevelPinWaitsForEoiAndRedeliversWhileAsserted)
{
    Apic apic;
    apic.program(10, LEVEL | 0x3a);
    apic.ioapic.set_irq(10, true);
    ASSERT_EQ(apic.delivered.size(), 1u);
    EXPECT_EQ(apic.delivered[0].message.data, 0x803au);
    EXPECT_NE(apic.reg(0x10 + 20) & REMOTE_IRR, 0u);
    apic.ioapic.set_irq(10, true);
    EXPECT_EQ(apic.delivered.size(), 1u) << "remote IRR holds further deliveries";
    apic.ioapic.eoi(0x3b);
    EXPECT_EQ(apic.delivered.size(), 1u) << "another vector's EOI does nothing";
    apic.ioapic.eoi(0x3a);
    EXPECT_EQ(apic.delivered.size(), 2u) << "still asserted at EOI: delivered again";
    apic.ioapic.set_irq(10, false);
    apic.ioapic.eoi(0x3a);
    EXPECT_EQ(apic.delivered.size(), 2u);
    EXPECT_EQ(apic.reg(0x10 + 20) & REMOTE_IRR, 0u);
}

TEST(Ioapic, EoiRegisterAndEdgeToggleClearRemoteIrr)
{
    Apic apic;
    apic.program(5, LEVEL | 0x45);
    apic.ioapic.set_irq(5, true);
    apic.write32(0x40, 0x45);
    EXPECT_EQ(apic.delivered.size(), 2u) << "the EOI register acts as a local APIC EOI";
    apic.program(5, MASKED | 0x45); // edge and masked: remote IRR goes
    EXPECT_EQ(apic.reg(0x10 + 10) & REMOTE_IRR, 0u);
    apic.program(5, LEVEL | 0x45);
    EXPECT_EQ(apic.delivered.size(), 3u) << "unmasked while asserted: delivered";
}

TEST(Ioapic, LevelAssertedWhileMaskedIsDeliveredOnUnmask)
{
    Apic apic;
    apic.program(11, LEVEL | MASKED | 0x50);
    apic.ioapic.set_irq(11, true);
    EXPECT_TRUE(apic.delivered.empty());
    apic.program(11, LEVEL | 0x50);
    EXPECT_EQ(apic.delivered.size(), 1u);
}

TEST(Ioapic, ReadOnlyBitsIgnoreWritesAndNarrowAccessesWork)
{
    Apic apic;
    apic.program(1, LEVEL | REMOTE_IRR | (1ull << 12) | 0x21);
    EXPECT_EQ(apic.reg(0x12), static_cast<u32>(LEVEL | 0x21));
    u8 select = 0x13;
    apic.ioapic.write(0, std::span<u8 const>(&select, 1));
    u8 high[2] = {};
    apic.ioapic.read(0x10, high);
    EXPECT_EQ(high[0], 0u);
    u64 wide = 0;
    apic.ioapic.read(0x10, std::span(reinterpret_cast<u8*>(&wide), 8));
    EXPECT_EQ(wide, 0u);
    apic.ioapic.set_irq(24, true);
    apic.ioapic.set_irq(0xffff'ffff, true);
    EXPECT_TRUE(apic.delivered.empty());
}
