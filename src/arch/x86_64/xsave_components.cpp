#include "arch/x86_64/xsave_components.h"

#include <algorithm>
#include <array>

#include "arch/x86_64/cpuid.h"

namespace kasou::arch::x86_64 {

namespace {

constexpr u32 LEAF_XSAVE = 0xD;
constexpr u32 LEAF1_ECX_XSAVE = 1u << 26;
// The legacy region and the XSAVE header: the size of an area holding x87 and SSE state only.
constexpr u32 LEGACY_AREA_SIZE = 512 + 64;

// A user state component and the CPUID bit that offers it (Intel SDM vol. 1, table 13-1).
struct Component {
    u32 index;
    u32 function;
    u32 reg; // 0 EAX, 1 EBX, 2 ECX, 3 EDX
    u32 bit;
};

constexpr std::array<Component, 9> USER_COMPONENTS { {
    { 2, 1, 2, 28 },  // AVX: CPUID.1:ECX.AVX
    { 3, 7, 1, 14 },  // BNDREGS: CPUID.7.0:EBX.MPX
    { 4, 7, 1, 14 },  // BNDCSR
    { 5, 7, 1, 16 },  // opmask: CPUID.7.0:EBX.AVX512F
    { 6, 7, 1, 16 },  // ZMM_Hi256
    { 7, 7, 1, 16 },  // Hi16_ZMM
    { 9, 7, 2, 3 },   // PKRU: CPUID.7.0:ECX.PKU
    { 17, 7, 3, 24 }, // XTILECFG: CPUID.7.0:EDX.AMX-TILE
    { 18, 7, 3, 24 }, // XTILEDATA
} };

// Components 0 (x87) and 1 (SSE) come with XSAVE itself.
constexpr u64 ALWAYS_OFFERED = 0b11;

CpuidEntry* find_entry(CpuidTable& table, u32 function, u32 index)
{
    return const_cast<CpuidEntry*>(find_cpuid(table, function, index));
}

bool offers_xsave(CpuidTable const& table)
{
    auto const* leaf1 = find_cpuid(table, 1);
    return leaf1 && (leaf1->ecx & LEAF1_ECX_XSAVE) && find_cpuid(table, LEAF_XSAVE, 0);
}

bool feature_offered(CpuidTable const& table, Component const& component)
{
    auto const* entry = find_cpuid(table, component.function, 0);
    if (!entry)
        return false;
    u32 const registers[] { entry->eax, entry->ebx, entry->ecx, entry->edx };
    return registers[component.reg] & (1u << component.bit);
}

// The user components that both leaf 0xD and the feature bits offer.
u64 offered_mask(CpuidTable const& table)
{
    auto const* leaf = find_cpuid(table, LEAF_XSAVE, 0);
    u64 listed = (u64 { leaf->edx } << 32) | leaf->eax;
    u64 mask = ALWAYS_OFFERED;
    for (auto const& component : USER_COMPONENTS) {
        if (feature_offered(table, component))
            mask |= u64 { 1 } << component.index;
    }
    return listed & mask;
}

// The standard-format size of an area holding the components in `mask`: the end of the last one.
u32 area_size(CpuidTable const& table, u64 mask)
{
    u32 size = LEGACY_AREA_SIZE;
    for (u32 index = 2; index < 64; ++index) {
        if (!(mask & (u64 { 1 } << index)))
            continue;
        if (auto const* sub_leaf = find_cpuid(table, LEAF_XSAVE, index))
            size = std::max(size, sub_leaf->ebx + sub_leaf->eax);
    }
    return size;
}

} // namespace

void shape_xsave_leaf(CpuidTable& table)
{
    if (!offers_xsave(table))
        return;
    u64 mask = offered_mask(table);
    auto* leaf = find_entry(table, LEAF_XSAVE, 0);
    u64 listed = (u64 { leaf->edx } << 32) | leaf->eax;
    for (u32 index = 2; index < 64; ++index) {
        u64 bit = u64 { 1 } << index;
        if (!(listed & bit) || (mask & bit))
            continue;
        if (auto* sub_leaf = find_entry(table, LEAF_XSAVE, index))
            sub_leaf->eax = sub_leaf->ebx = sub_leaf->ecx = sub_leaf->edx = 0;
    }
    leaf = find_entry(table, LEAF_XSAVE, 0);
    leaf->eax = static_cast<u32>(mask);
    leaf->edx = static_cast<u32>(mask >> 32);
    leaf->ebx = area_size(table, mask);
    leaf->ecx = leaf->ebx;
}

u64 offered_xcr0(CpuidTable const& table)
{
    if (!offers_xsave(table))
        return 0;
    auto const* leaf = find_cpuid(table, LEAF_XSAVE, 0);
    return (u64 { leaf->edx } << 32) | leaf->eax;
}

} // namespace kasou::arch::x86_64
