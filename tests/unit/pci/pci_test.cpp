#include <vector>

#include <gtest/gtest.h>

#include "pci/msix.h"
#include "pci/pci_bus.h"

using namespace kasou;
using namespace kasou::pci;

namespace {

// A function with one 64-bit 16 KiB memory BAR that remembers the last BAR access.
class TestFunction final : public PciDevice {
public:
    TestFunction()
        : m_config(PciIdentity { 0x1af4, 0x1042, 1, 0x01, 0x00, 0, 0x1af4, 0x0002 })
    {
        m_config.set_memory_bar(0, 0x4000, 0, true);
        u8 const body[6] = { 1, 2, 3, 4, 5, 6 };
        u8 const writable[6] = { 0, 0, 0xFF, 0, 0, 0 };
        m_capability = m_config.add_capability(0x09, body, writable);
    }
    ConfigSpace& config() override { return m_config; }
    void bar_read(u8 bar, u64 offset, std::span<u8> data) override
    {
        last = { bar, offset, false };
        std::fill(data.begin(), data.end(), 0x5A);
    }
    void bar_write(u8 bar, u64 offset, std::span<u8 const>) override { last = { bar, offset, true }; }

    struct Access {
        u8 bar;
        u64 offset;
        bool write;
    } last { 0xFF, 0, false };
    u8 m_capability;

private:
    ConfigSpace m_config;
};

u32 read_cf8(PciBus& bus, u8 device, u16 offset)
{
    auto ports = bus.config_ports();
    u32 address = 0x8000'0000u | (u32 { device } << 11) | (offset & 0xFC);
    ports->write(0, std::span(reinterpret_cast<u8 const*>(&address), 4));
    u32 value = 0;
    ports->read(4, std::span(reinterpret_cast<u8*>(&value), 4));
    return value;
}

} // namespace

TEST(ConfigSpace, BarSizingFollowsTheSpec)
{
    TestFunction function;
    auto& config = function.config();
    config.write(0x10, 4, 0xFFFF'FFFF);
    config.write(0x14, 4, 0xFFFF'FFFF);
    EXPECT_EQ(config.read(0x10, 4), 0xFFFF'C004u) << "size mask plus the 64-bit memory type";
    EXPECT_EQ(config.read(0x14, 4), 0xFFFF'FFFFu);
    config.write(0x10, 4, 0xC000'4000);
    config.write(0x14, 4, 0x1);
    EXPECT_EQ(config.bar_address(0), 0x1'C000'4000u);
    config.write(0x00, 4, 0);
    EXPECT_EQ(config.read(0x00, 2), 0x1af4u) << "vendor ID is read-only";
    EXPECT_EQ(config.read(0x02, 2), 0x1042u);
    EXPECT_EQ(config.read(0x03, 2), 0xFFFFu) << "misaligned access";
}

TEST(ConfigSpace, CapabilitiesAreLinked)
{
    TestFunction function;
    auto& config = function.config();
    EXPECT_TRUE(config.read(0x06, 2) & (1u << 4)) << "capabilities bit";
    u8 first = static_cast<u8>(config.read(0x34, 1));
    EXPECT_EQ(first, function.m_capability);
    EXPECT_EQ(config.read(first, 1), 0x09u);
    EXPECT_EQ(config.read(first + 1, 1), 0u) << "end of list";
    config.write(first + 2, 1, 0x77);
    config.write(first + 4, 1, 0x77);
    EXPECT_EQ(config.read(first + 2, 1), 1u) << "read-only byte";
    EXPECT_EQ(config.read(first + 4, 1), 0x77u) << "writable byte";
}

TEST(PciBus, ConfigurationMechanismOneAndEcamAgree)
{
    PciBus bus(0xC000'0000, 0x1000'0000);
    auto function = std::make_shared<TestFunction>();
    u8 slot = bus.add(function).value();
    EXPECT_EQ(slot, 1);
    EXPECT_EQ(read_cf8(bus, 0, 0), 0x00081b36u) << "host bridge at device 0";
    EXPECT_EQ(read_cf8(bus, slot, 0), 0x10421af4u);
    EXPECT_EQ(read_cf8(bus, 7, 0), 0xFFFF'FFFFu) << "empty slot";
    auto ecam = bus.ecam();
    u32 value = 0;
    ecam->read((u64 { slot } << 15) | 0x0, std::span(reinterpret_cast<u8*>(&value), 4));
    EXPECT_EQ(value, 0x10421af4u);
    ecam->read((u64 { slot } << 15) | (1u << 12), std::span(reinterpret_cast<u8*>(&value), 4));
    EXPECT_EQ(value, 0xFFFF'FFFFu) << "function 1 does not exist";
}

TEST(PciBus, BarsAreAssignedAndFollowTheDriver)
{
    PciBus bus(0xC000'0000, 0x1000'0000);
    auto function = std::make_shared<TestFunction>();
    u8 slot = bus.add(function).value();
    EXPECT_EQ(function->config().bar_address(0), 0xC000'0000u);
    EXPECT_FALSE(bus.find_bar(0xC000'0010, 4)) << "memory decoding is off until the driver enables it";
    bus.config_write(slot, 0, ConfigSpace::COMMAND, 2, ConfigSpace::COMMAND_MEMORY);
    auto window = bus.bar_window();
    u8 data[4] = {};
    window->read(0x10, data);
    EXPECT_EQ(data[0], 0x5A);
    EXPECT_EQ(function->last.offset, 0x10u);
    EXPECT_FALSE(bus.find_bar(0xC000'3FFE, 4)) << "runs past the BAR";
    bus.config_write(slot, 0, 0x10, 4, 0xC010'0000);
    window->write(0x10'0020, data);
    EXPECT_TRUE(function->last.write);
    EXPECT_EQ(function->last.offset, 0x20u) << "the BAR moved";
}

namespace {

struct RecordingSink final : MsiSink {
    std::vector<u16> delivered;
    std::vector<std::pair<u16, u32>> routes;
    void route_changed(u16 vector, u64, u32 data) override { routes.emplace_back(vector, data); }
    void deliver(u16 vector) override { delivered.push_back(vector); }
};

void write32(MsixTable& table, u64 offset, u32 value) { table.table_write(offset, std::span(reinterpret_cast<u8 const*>(&value), 4)); }

} // namespace

TEST(MsixTable, MaskedVectorsArePendingUntilUnmasked)
{
    RecordingSink sink;
    MsixTable table(2, sink);
    table.signal(0);
    EXPECT_TRUE(sink.delivered.empty()) << "MSI-X disabled";
    u8 pba = 0;
    table.pba_read(0, std::span(&pba, 1));
    EXPECT_EQ(pba, 1);
    write32(table, 0, 0xFEE0'0000);
    write32(table, 8, 0x41);
    ASSERT_EQ(sink.routes.size(), 2u);
    EXPECT_EQ(sink.routes.back(), (std::pair<u16, u32> { 0, 0x41 }));
    table.set_control(true, false);
    EXPECT_TRUE(sink.delivered.empty()) << "vector 0 itself is still masked";
    write32(table, 12, 0);
    EXPECT_EQ(sink.delivered, std::vector<u16> { 0 }) << "delivered on unmask";
    table.pba_read(0, std::span(&pba, 1));
    EXPECT_EQ(pba, 0);
    table.signal(0);
    EXPECT_EQ(sink.delivered.size(), 2u);
    table.set_control(true, true);
    table.signal(0);
    EXPECT_EQ(sink.delivered.size(), 2u) << "function mask";
    table.set_control(true, false);
    EXPECT_EQ(sink.delivered.size(), 3u);
    table.signal(7);
    table.signal(MsixTable::NO_VECTOR);
    EXPECT_EQ(sink.delivered.size(), 3u) << "unknown vectors are ignored";
}

TEST(MsixTable, IgnoresBadAccesses)
{
    RecordingSink sink;
    MsixTable table(1, sink);
    u8 wide[8];
    table.table_read(12, wide);
    EXPECT_EQ(wide[0], 0xFF) << "runs past the table";
    u8 odd[2] = { 1, 1 };
    table.table_write(0, odd);
    EXPECT_TRUE(sink.routes.empty()) << "2-byte writes are not allowed";
}

// An 8-byte write at entry 0's control word also writes entry 1's address: that entry's route must
// be updated, as if the two words had been written one by one.
TEST(MsixTable, AWriteSpanningTwoEntriesUpdatesBoth)
{
    RecordingSink sink;
    MsixTable table(2, sink);
    u32 const words[2] = { 1, 0xFEE0'1000 }; // entry 0 control (masked), entry 1 address_low
    table.table_write(12, std::span(reinterpret_cast<u8 const*>(words), 8));
    ASSERT_EQ(sink.routes.size(), 1u);
    EXPECT_EQ(sink.routes[0].first, 1) << "entry 1's address changed";
    u32 read_back = 0;
    table.table_read(16, std::span(reinterpret_cast<u8*>(&read_back), 4));
    EXPECT_EQ(read_back, 0xFEE0'1000u);
}
