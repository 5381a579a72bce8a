#include <gtest/gtest.h>

#include "arch/x86_64/cpu_features.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/xsave_components.h"

using namespace kasou;
using namespace kasou::arch::x86_64;

namespace {

kvm_cpuid_entry2 sub_leaf(u32 function, u32 index, u32 eax, u32 ebx, u32 ecx = 0, u32 edx = 0)
{
    kvm_cpuid_entry2 e {};
    e.function = function;
    e.index = index;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

// An AVX-512 host as KVM reports it (sizes and offsets of a Skylake server): leaf 0xD lists x87,
// SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM and PKRU, though leaf 7 does not offer PKU.
std::vector<kvm_cpuid_entry2> avx512_host()
{
    return {
        sub_leaf(0, 0, 0xD, 0x756e6547, 0x6c65746e, 0x49656e69),
        sub_leaf(1, 0, 0x50657, 0x00010800, (1u << 26) | (1u << 28), 1),
        sub_leaf(7, 0, 0, (1u << 5) | (1u << 16) | (1u << 17), 0),
        sub_leaf(0xD, 0, 0x2E7, 2696, 2696),
        sub_leaf(0xD, 1, 0xF, 0),
        sub_leaf(0xD, 2, 256, 576),
        sub_leaf(0xD, 5, 64, 1088),
        sub_leaf(0xD, 6, 512, 1152),
        sub_leaf(0xD, 7, 1024, 1664),
        sub_leaf(0xD, 9, 8, 2688),
    };
}

std::vector<kvm_cpuid_entry2> shaped(std::string_view hidden)
{
    return shape_cpuid(avx512_host(), 0, CpuTopology::single_package(1), parse_hidden_features(hidden).value());
}

} // namespace

TEST(XsaveComponents, ComponentsWithoutTheirFeatureLeaveLeafD)
{
    auto table = shaped("");
    auto const* leaf = find_cpuid(table, 0xD, 0);
    EXPECT_EQ(leaf->eax, 0xE7u) << "PKRU is listed but PKU is not offered";
    EXPECT_EQ(leaf->edx, 0u);
    EXPECT_EQ(leaf->ebx, 2688u) << "ends with Hi16_ZMM at 1664 + 1024";
    EXPECT_EQ(leaf->ecx, 2688u);
    EXPECT_EQ(find_cpuid(table, 0xD, 9)->eax, 0u) << "PKRU's sub-leaf reads as zeros";
    EXPECT_EQ(find_cpuid(table, 0xD, 9)->ebx, 0u);
    EXPECT_EQ(find_cpuid(table, 0xD, 7)->eax, 1024u) << "offered components keep their sub-leaves";
    EXPECT_EQ(offered_xcr0(table), 0xE7u);
}

TEST(XsaveComponents, HidingAvx512ShrinksTheAreaToAvx)
{
    auto table = shaped("-avx512f");
    auto const* leaf = find_cpuid(table, 0xD, 0);
    EXPECT_EQ(leaf->eax, 0x7u);
    EXPECT_EQ(leaf->ebx, 832u) << "576 + AVX's 256";
    EXPECT_EQ(leaf->ecx, 832u);
    for (u32 index : { 5u, 6u, 7u })
        EXPECT_EQ(find_cpuid(table, 0xD, index)->eax, 0u) << "sub-leaf " << index;
    EXPECT_EQ(offered_xcr0(table), 0x7u);
}

TEST(XsaveComponents, HidingAvxLeavesX87AndSse)
{
    auto table = shaped("-avx");
    auto const* leaf = find_cpuid(table, 0xD, 0);
    EXPECT_EQ(leaf->eax, 0x3u);
    EXPECT_EQ(leaf->ebx, 576u) << "the legacy region and the header";
    EXPECT_EQ(offered_xcr0(table), 0x3u);
}

TEST(XsaveComponents, WithoutXsaveNothingIsOffered)
{
    auto table = shaped("-xsave");
    EXPECT_EQ(offered_xcr0(table), 0u);
}
