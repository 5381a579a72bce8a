#include <gtest/gtest.h>

#include "arch/x86_64/memory_map.h"

using namespace kasou;
using namespace kasou::arch::x86_64;

TEST(MemoryMap, DescribesLowAndHighRam)
{
    auto memory = memory::GuestMemory::create(4 * GiB).value();
    auto map = build_memory_map(memory);
    ASSERT_EQ(map.size(), 4u);
    EXPECT_EQ(map[0].address, 0u);
    EXPECT_EQ(map[0].size, 0x9FC00u);
    EXPECT_EQ(map[1].type, MemoryType::Reserved);
    EXPECT_EQ(map[1].address + map[1].size, 0x100000u);
    EXPECT_EQ(map[2].address, 0x100000u);
    EXPECT_EQ(map[2].address + map[2].size, 0xC0000000u);
    EXPECT_EQ(map[3].address, 4 * GiB);
    EXPECT_EQ(map[3].size, GiB);
    u64 ram = 0;
    for (auto const& entry : map)
        ram += entry.type == MemoryType::Ram ? entry.size : 0;
    EXPECT_EQ(ram, 4 * GiB - (0x100000 - 0x9FC00));
}

TEST(MemoryMap, TinyMemoryHasOnlyConventionalRam)
{
    auto memory = memory::GuestMemory::create(512 * KiB).value();
    auto map = build_memory_map(memory);
    ASSERT_EQ(map.size(), 1u);
    EXPECT_EQ(map[0].size, 512 * KiB);
}
