#include "arch/x86_64/cpuid.h"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/xsave_components.h"

namespace kasou::arch::x86_64 {

namespace {

// CPUID bit positions (Intel SDM vol. 2A, CPUID).
constexpr u32 LEAF1_ECX_X2APIC = 1u << 21;
constexpr u32 LEAF1_ECX_HYPERVISOR = 1u << 31;
constexpr u32 LEAF1_EDX_HTT = 1u << 28;
constexpr u32 LEAF_EXTENDED_TOPOLOGY = 0xB;
constexpr u32 LEAF_V2_EXTENDED_TOPOLOGY = 0x1F;
constexpr u32 LEVEL_TYPE_SMT = 1;
constexpr u32 LEVEL_TYPE_CORE = 2;
constexpr u32 HYPERVISOR_BASE = 0x4000'0000;
constexpr u32 AMD_ADDRESS_SIZES = 0x8000'0008;

CpuidEntry* find_mutable(CpuidTable& table, u32 function, u32 index)
{
    for (auto& entry : table) {
        bool indexed = entry.significant_index;
        if (entry.function == function && (!indexed || entry.index == index))
            return &entry;
    }
    return nullptr;
}

bool is_amd(CpuidTable const& table)
{
    auto const* vendor = find_cpuid(table, 0);
    // "AuthenticAMD": EBX "Auth", EDX "enti", ECX "cAMD".
    return vendor && vendor->ebx == 0x6874'7541 && vendor->edx == 0x6974'6e65 && vendor->ecx == 0x444d'4163;
}

void add_topology_leaf(CpuidTable& table, u32 function, CpuTopology const& topology, u32 apic_id)
{
    std::erase_if(table, [&](CpuidEntry const& entry) { return entry.function == function; });
    auto level = [&](u32 index, u32 shift, u32 count, u32 type) {
        CpuidEntry entry {};
        entry.function = function;
        entry.index = index;
        entry.significant_index = true;
        entry.eax = shift;
        entry.ebx = count;
        entry.ecx = (type << 8) | index;
        entry.edx = apic_id;
        table.push_back(entry);
    };
    level(0, topology.thread_bits(), topology.threads_per_core, LEVEL_TYPE_SMT);
    level(1, topology.thread_bits() + topology.core_bits(), topology.logical_per_package(), LEVEL_TYPE_CORE);
    level(2, 0, 0, 0); // terminates the enumeration
}

} // namespace

CpuidEntry const* find_cpuid(CpuidTable const& table, u32 function, u32 index)
{
    return find_mutable(const_cast<CpuidTable&>(table), function, index);
}

CpuidTable shape_cpuid(CpuidTable table, u32 vcpu_index, CpuTopology const& topology,
    std::vector<CpuFeature> const& hidden)
{
    u32 apic_id = topology.apic_id(vcpu_index);
    u32 package_bits = topology.thread_bits() + topology.core_bits();

    // Leaf 0 must reach the extended topology leaf so guests find it.
    if (auto* leaf0 = find_mutable(table, 0, 0); leaf0 && leaf0->eax < LEAF_EXTENDED_TOPOLOGY)
        leaf0->eax = LEAF_EXTENDED_TOPOLOGY;
    u32 max_basic = find_cpuid(table, 0) ? find_cpuid(table, 0)->eax : LEAF_EXTENDED_TOPOLOGY;

    if (auto* leaf1 = find_mutable(table, 1, 0)) {
        u32 addressable = u32 { 1 } << package_bits;
        leaf1->ebx = (leaf1->ebx & 0x0000'FFFF) | (std::min<u32>(addressable, 255) << 16) | ((apic_id & 0xFF) << 24);
        leaf1->ecx |= LEAF1_ECX_X2APIC | LEAF1_ECX_HYPERVISOR;
        if (topology.logical_per_package() > 1)
            leaf1->edx |= LEAF1_EDX_HTT;
        else
            leaf1->edx &= ~LEAF1_EDX_HTT;
    }

    // Deterministic cache parameters: EAX[31:26] addressable core IDs - 1, EAX[25:14] logical
    // processors sharing the cache - 1. L1 and L2 are per core, the last level per package.
    for (auto& entry : table) {
        if (entry.function != 4 || (entry.eax & 0x1F) == 0)
            continue;
        u32 cache_level = (entry.eax >> 5) & 0x7;
        u32 sharing = cache_level >= 3 ? (u32 { 1 } << package_bits) : (u32 { 1 } << topology.thread_bits());
        u32 cores = u32 { 1 } << topology.core_bits();
        entry.eax = (entry.eax & 0x3FFF) | (((sharing - 1) & 0xFFF) << 14) | (((cores - 1) & 0x3F) << 26);
    }

    add_topology_leaf(table, LEAF_EXTENDED_TOPOLOGY, topology, apic_id);
    if (max_basic >= LEAF_V2_EXTENDED_TOPOLOGY)
        add_topology_leaf(table, LEAF_V2_EXTENDED_TOPOLOGY, topology, apic_id);

    if (is_amd(table)) {
        if (auto* sizes = find_mutable(table, AMD_ADDRESS_SIZES, 0))
            sizes->ecx = (sizes->ecx & ~u32 { 0xF0FF }) | (package_bits << 12) | ((topology.logical_per_package() - 1) & 0xFF);
    }

    if (!find_cpuid(table, HYPERVISOR_BASE)) {
        CpuidEntry signature {};
        signature.function = HYPERVISOR_BASE;
        signature.eax = HYPERVISOR_BASE + 1;
        std::memcpy(&signature.ebx, "KVMK", 4);
        std::memcpy(&signature.ecx, "VMKV", 4);
        std::memcpy(&signature.edx, "M\0\0\0", 4);
        table.push_back(signature);
        CpuidEntry features {};
        features.function = HYPERVISOR_BASE + 1;
        table.push_back(features);
    }

    hide_features(table, hidden);
    shape_xsave_leaf(table);
    return table;
}

} // namespace kasou::arch::x86_64
