#include <gtest/gtest.h>

#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/xsave_components.h"

using namespace kasou;
using namespace kasou::arch::x86_64;

namespace {

CpuidEntry entry(u32 function, u32 eax, u32 ebx, u32 ecx, u32 edx, u32 index = 0, bool significant_index = false)
{
    CpuidEntry e {};
    e.function = function;
    e.index = index;
    e.significant_index = significant_index;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

// A small host table: GenuineIntel, max leaf 0xD, leaf 1 with XSAVE and AVX, an L1D and an L3 cache.
CpuidTable host_table()
{
    return {
        entry(0, 0xD, 0x756e6547, 0x6c65746e, 0x49656e69),
        entry(1, 0x50657, 0x00010800, (1u << 26) | (1u << 28) | (1u << 13), 1u << 0),
        entry(4, (1u << 5) | 1, 0, 0, 0, 0, true),
        entry(4, (3u << 5) | 3, 0, 0, 0, 1, true),
        entry(7, 0, (1u << 5) | (1u << 16) | (1u << 17), 0, 0, 0, true),
        entry(0xD, 1, 0, 0, 0, 1, true),
    };
}

u32 bits(u32 value, int high, int low) { return (value >> low) & ((1u << (high - low + 1)) - 1); }

} // namespace

TEST(CpuTopology, ApicIdsUsePowerOfTwoFields)
{
    CpuTopology topology { 2, 3, 2 };
    EXPECT_EQ(topology.vcpu_count(), 12u);
    EXPECT_EQ(topology.thread_bits(), 1u);
    EXPECT_EQ(topology.core_bits(), 2u);
    EXPECT_EQ(topology.apic_id(0), 0u);
    EXPECT_EQ(topology.apic_id(1), 1u);
    EXPECT_EQ(topology.apic_id(2), 2u);   // core 1, thread 0
    EXPECT_EQ(topology.apic_id(5), 5u);   // core 2, thread 1
    EXPECT_EQ(topology.apic_id(6), 8u);   // package 1
    EXPECT_EQ(topology.apic_id(11), 13u); // package 1, core 2, thread 1
}

TEST(Cpuid, TopologyLeavesAgreeWithTheVcpuCount)
{
    auto topology = CpuTopology::single_package(2);
    for (u32 index = 0; index < 2; ++index) {
        auto table = shape_cpuid(host_table(), index, topology, {});
        auto const* leaf1 = find_cpuid(table, 1);
        ASSERT_NE(leaf1, nullptr);
        EXPECT_EQ(bits(leaf1->ebx, 31, 24), index) << "initial APIC ID";
        EXPECT_EQ(bits(leaf1->ebx, 23, 16), 2u) << "addressable logical processors";
        EXPECT_TRUE(leaf1->ecx & (1u << 21)) << "x2APIC offered";
        EXPECT_TRUE(leaf1->ecx & (1u << 31)) << "hypervisor bit";
        EXPECT_TRUE(leaf1->edx & (1u << 28)) << "HTT with more than one logical processor";

        auto const* smt = find_cpuid(table, 0xB, 0);
        auto const* core = find_cpuid(table, 0xB, 1);
        auto const* end = find_cpuid(table, 0xB, 2);
        ASSERT_TRUE(smt && core && end);
        EXPECT_EQ(smt->ebx, 1u);
        EXPECT_EQ(bits(smt->ecx, 15, 8), 1u);
        EXPECT_EQ(core->ebx, 2u);
        EXPECT_EQ(core->eax, 1u) << "shift to the package ID";
        EXPECT_EQ(bits(core->ecx, 15, 8), 2u);
        EXPECT_EQ(core->edx, index) << "x2APIC ID";
        EXPECT_EQ(bits(end->ecx, 15, 8), 0u);

        auto const* l1 = find_cpuid(table, 4, 0);
        auto const* l3 = find_cpuid(table, 4, 1);
        EXPECT_EQ(bits(l1->eax, 25, 14), 0u) << "L1 is private";
        EXPECT_EQ(bits(l3->eax, 25, 14), 1u) << "L3 shared by both";
        EXPECT_EQ(bits(l3->eax, 31, 26), 1u) << "two cores";
        EXPECT_EQ(find_cpuid(table, 0)->eax, 0xDu);
        EXPECT_NE(find_cpuid(table, 0x40000000), nullptr) << "hypervisor leaf";
        EXPECT_EQ(find_cpuid(table, 0x1F), nullptr) << "0x1F only when the host has it";
    }
}

TEST(Cpuid, SingleCpuHasNoHtt)
{
    auto table = shape_cpuid(host_table(), 0, CpuTopology::single_package(1), {});
    EXPECT_FALSE(find_cpuid(table, 1)->edx & (1u << 28));
}

TEST(Cpuid, HidingXsaveHidesItsDependants)
{
    auto hidden = parse_hidden_features("-xsave,-cx16").value();
    ASSERT_EQ(hidden.size(), 2u);
    auto table = shape_cpuid(host_table(), 0, CpuTopology::single_package(1), hidden);
    auto const* leaf1 = find_cpuid(table, 1);
    EXPECT_FALSE(leaf1->ecx & (1u << 26)) << "xsave";
    EXPECT_FALSE(leaf1->ecx & (1u << 28)) << "avx depends on xsave";
    EXPECT_FALSE(leaf1->ecx & (1u << 13)) << "cx16";
    auto const* leaf7 = find_cpuid(table, 7, 0);
    EXPECT_FALSE(leaf7->ebx & (1u << 5)) << "avx2";
    EXPECT_FALSE(leaf7->ebx & (1u << 16)) << "avx512f";
    EXPECT_FALSE(leaf7->ebx & (1u << 17)) << "avx512dq";
    EXPECT_FALSE(find_cpuid(table, 0xD, 1)->eax & 1) << "xsaveopt";
    EXPECT_TRUE(leaf1->edx & 1) << "fpu untouched";
}

TEST(CpuFeatures, RefusesUnknownOrAddedFeatures)
{
    auto unknown = parse_hidden_features("-xsave,-warp_drive");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().to_string().find("unknown feature 'warp_drive'"), std::string::npos);
    EXPECT_NE(unknown.error().to_string().find("cx16"), std::string::npos) << "lists the known names";
    auto added = parse_hidden_features("+avx");
    ASSERT_FALSE(added);
    EXPECT_NE(added.error().to_string().find("must start with '-'"), std::string::npos);
    EXPECT_TRUE(parse_hidden_features("").value().empty());
}

namespace {

constexpr bool INDEXED = true;

// An AVX-512 host as KVM reports it (sizes and offsets of a Skylake server): leaf 0xD lists x87,
// SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM and PKRU, though leaf 7 does not offer PKU.
CpuidTable avx512_host()
{
    return {
        entry(0, 0xD, 0x756e6547, 0x6c65746e, 0x49656e69),
        entry(1, 0x50657, 0x00010800, (1u << 26) | (1u << 28), 1),
        entry(7, 0, (1u << 5) | (1u << 16) | (1u << 17), 0, 0, 0, INDEXED),
        entry(0xD, 0x2E7, 2696, 2696, 0, 0, INDEXED),
        entry(0xD, 0xF, 0, 0, 0, 1, INDEXED),
        entry(0xD, 256, 576, 0, 0, 2, INDEXED),
        entry(0xD, 64, 1088, 0, 0, 5, INDEXED),
        entry(0xD, 512, 1152, 0, 0, 6, INDEXED),
        entry(0xD, 1024, 1664, 0, 0, 7, INDEXED),
        entry(0xD, 8, 2688, 0, 0, 9, INDEXED),
    };
}

CpuidTable shaped(std::string_view hidden)
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
