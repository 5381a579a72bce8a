#include <gtest/gtest.h>

#include "memory/guest_memory.h"

using namespace kasou;
using kasou::memory::GuestMemory;

TEST(GuestMemory, SmallMemoryIsOneRegionFromZero)
{
    auto memory = GuestMemory::create(16 * MiB).value();
    ASSERT_EQ(memory.regions().size(), 1u);
    EXPECT_EQ(memory.regions()[0].guest_physical, 0u);
    EXPECT_EQ(memory.end(), 16 * MiB);
}

TEST(GuestMemory, LargeMemorySkipsTheMmioHole)
{
    auto memory = GuestMemory::create(4 * GiB).value();
    ASSERT_EQ(memory.regions().size(), 2u);
    EXPECT_EQ(memory.regions()[0].size(), GuestMemory::MMIO_HOLE_START);
    EXPECT_EQ(memory.regions()[1].guest_physical, GuestMemory::MMIO_HOLE_END);
    EXPECT_EQ(memory.regions()[1].size(), 4 * GiB - GuestMemory::MMIO_HOLE_START);
    EXPECT_TRUE(memory.contains(GuestMemory::MMIO_HOLE_START - 8, 8));
    EXPECT_FALSE(memory.contains(GuestMemory::MMIO_HOLE_START - 4, 8)) << "straddles into the hole";
    EXPECT_FALSE(memory.contains(GuestMemory::MMIO_HOLE_START, 1));
    EXPECT_TRUE(memory.contains(GuestMemory::MMIO_HOLE_END, 4096));
    EXPECT_FALSE(memory.contains(memory.end() - 4, 8));
}

TEST(GuestMemory, RefusesBadSizes)
{
    EXPECT_FALSE(GuestMemory::create(0));
    EXPECT_FALSE(GuestMemory::create(4097));
}

TEST(GuestMemory, ChecksEveryAccess)
{
    auto memory = GuestMemory::create(1 * MiB).value();
    EXPECT_TRUE(memory.write_object<u32>(0x1000, 0xdeadbeef));
    EXPECT_EQ(memory.read_object<u32>(0x1000).value(), 0xdeadbeefu);
    EXPECT_FALSE(memory.read_object<u64>(MiB - 4));
    EXPECT_FALSE(memory.span(MiB, 1));
    EXPECT_FALSE(memory.span(~u64 { 0 } - 2, 8)) << "an overflowing range";
    EXPECT_FALSE(memory.span(16, ~u64 { 0 })) << "a huge length";
    auto error = memory.span(2 * MiB, 16).error().to_string();
    EXPECT_NE(error.find("0x200000"), std::string::npos) << error;
}
