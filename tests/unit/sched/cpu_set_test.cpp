#include <gtest/gtest.h>

#include "sched/cpu_set.h"

using kasou::u32;
using kasou::sched::CpuSet;

TEST(CpuSet, ParsesListForm)
{
    auto set = CpuSet::parse_list("0-3,8,10-11\n");
    ASSERT_TRUE(set);
    EXPECT_EQ(set->count(), 7u);
    EXPECT_EQ(set->to_list(), "0-3,8,10-11");
    EXPECT_TRUE(set->contains(8));
    EXPECT_FALSE(set->contains(9));
    EXPECT_TRUE(CpuSet::parse_list("\n")->empty());
    EXPECT_EQ(CpuSet::parse_list("200-201")->to_vector(), (std::vector<u32> { 200, 201 }));
}

TEST(CpuSet, ParsesMaskFormMostSignificantWordFirst)
{
    auto set = CpuSet::parse_mask("00000001,00000000,80000003\n");
    ASSERT_TRUE(set);
    EXPECT_EQ(set->to_list(), "0-1,31,64");
    // NUL padding, as found in some captured trees.
    auto padded = CpuSet::parse_mask(std::string("000000ff\n\0\0", 11));
    ASSERT_TRUE(padded);
    EXPECT_EQ(padded->to_list(), "0-7");
}

TEST(CpuSet, RejectsMalformedText)
{
    EXPECT_FALSE(CpuSet::parse_list("0-"));
    EXPECT_FALSE(CpuSet::parse_list("3-1"));
    EXPECT_FALSE(CpuSet::parse_list("a"));
    EXPECT_FALSE(CpuSet::parse_list("0-99999999"));
    EXPECT_FALSE(CpuSet::parse_mask("0-3"));
    EXPECT_FALSE(CpuSet::parse_mask("123456789"));
}

TEST(CpuSet, SetOperations)
{
    auto a = CpuSet::of({ 0, 1, 2, 70 });
    auto b = CpuSet::of({ 2, 3, 70 });
    EXPECT_EQ((a & b).to_list(), "2,70");
    EXPECT_EQ((a | b).to_list(), "0-3,70");
    EXPECT_EQ((a - b).to_list(), "0-1");
    EXPECT_TRUE(a.intersects(b));
    EXPECT_FALSE((a - b).intersects(b));
    EXPECT_TRUE(CpuSet::of({ 2, 70 }).is_subset_of(a));
    EXPECT_EQ(a - a, CpuSet());
    EXPECT_EQ(b.first(), 2u);
}
