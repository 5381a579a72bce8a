#include <vector>

#include <gtest/gtest.h>

#include "bus/io_bus.h"

using namespace kasou;
using kasou::bus::IoBus;

namespace {

// Records the offsets it sees and answers reads with the low byte of the offset.
class RecordingDevice final : public bus::BusDevice {
public:
    void read(u64 offset, std::span<u8> data) override
    {
        for (auto& byte : data)
            byte = static_cast<u8>(offset);
        reads.push_back(offset);
    }
    void write(u64 offset, std::span<u8 const>) override { writes.push_back(offset); }

    std::vector<u64> reads;
    std::vector<u64> writes;
};

} // namespace

TEST(IoBus, DevicesSeeOffsets)
{
    IoBus bus("test");
    auto device = std::make_shared<RecordingDevice>();
    ASSERT_TRUE(bus.insert(device, 0x3f8, 8, "uart"));
    u8 value[1];
    ASSERT_TRUE(bus.read(0x3fd, value));
    EXPECT_EQ(value[0], 5);
    u8 const out[2] = { 1, 2 };
    ASSERT_TRUE(bus.write(0x3f8, out));
    EXPECT_EQ(device->writes, std::vector<u64> { 0 });
}

TEST(IoBus, AccessesOutsideOrAcrossRangesAreNotDispatched)
{
    IoBus bus("test");
    auto device = std::make_shared<RecordingDevice>();
    ASSERT_TRUE(bus.insert(device, 0x100, 4, "a"));
    u8 four[4];
    EXPECT_FALSE(bus.read(0xff, std::span(four, 1)));
    EXPECT_FALSE(bus.read(0x104, std::span(four, 1)));
    EXPECT_FALSE(bus.read(0x102, four)) << "runs past the end of the range";
    EXPECT_TRUE(bus.read(0x100, four));
    EXPECT_EQ(device->reads.size(), 1u);
}

TEST(IoBus, RefusesBadRanges)
{
    IoBus bus("test");
    auto device = std::make_shared<RecordingDevice>();
    EXPECT_FALSE(bus.insert(device, 0x10, 0, "empty"));
    EXPECT_FALSE(bus.insert(device, ~u64 { 0 } - 1, 4, "overflowing"));
    EXPECT_FALSE(bus.insert(nullptr, 0x10, 1, "null"));
    ASSERT_TRUE(bus.insert(device, 0x100, 0x10, "a"));
    ASSERT_TRUE(bus.insert(device, 0x110, 0x10, "adjacent"));
    auto overlap = bus.insert(device, 0x10f, 2, "overlapping");
    ASSERT_FALSE(overlap);
    EXPECT_NE(overlap.error().to_string().find("overlaps a"), std::string::npos) << overlap.error().to_string();
    EXPECT_FALSE(bus.insert(device, 0xf0, 0x100, "covering"));
    EXPECT_FALSE(bus.insert(device, 0x104, 1, "inside"));
}

TEST(IoBus, FrozenBusRefusesInsertion)
{
    IoBus bus("test");
    bus.freeze();
    auto result = bus.insert(std::make_shared<RecordingDevice>(), 0, 1, "late");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("after the machine has started"), std::string::npos);
}
