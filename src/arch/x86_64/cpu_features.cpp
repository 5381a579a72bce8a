#include "arch/x86_64/cpu_features.h"

#include <fmt/format.h>

namespace kasou::arch::x86_64 {

namespace {

using enum CpuidRegister;

// A feature and the feature it needs; hiding the parent hides the child.
struct FeatureRow {
    CpuFeature feature;
    std::string_view parent;
};

// Intel SDM vol. 2A, CPUID, tables 3-10, 3-11 and the leaf 07H/0DH/80000001H descriptions.
std::vector<FeatureRow> const& feature_rows()
{
    static std::vector<FeatureRow> const rows = {
        { { "sse3", 1, 0, Ecx, 0 }, "" },
        { { "pclmulqdq", 1, 0, Ecx, 1 }, "" },
        { { "ssse3", 1, 0, Ecx, 9 }, "" },
        { { "fma", 1, 0, Ecx, 12 }, "avx" },
        { { "cx16", 1, 0, Ecx, 13 }, "" },
        { { "pcid", 1, 0, Ecx, 17 }, "" },
        { { "sse4_1", 1, 0, Ecx, 19 }, "" },
        { { "sse4_2", 1, 0, Ecx, 20 }, "" },
        { { "x2apic", 1, 0, Ecx, 21 }, "" },
        { { "movbe", 1, 0, Ecx, 22 }, "" },
        { { "popcnt", 1, 0, Ecx, 23 }, "" },
        { { "tsc_deadline_timer", 1, 0, Ecx, 24 }, "" },
        { { "aes", 1, 0, Ecx, 25 }, "" },
        { { "xsave", 1, 0, Ecx, 26 }, "" },
        { { "avx", 1, 0, Ecx, 28 }, "xsave" },
        { { "f16c", 1, 0, Ecx, 29 }, "avx" },
        { { "rdrand", 1, 0, Ecx, 30 }, "" },
        { { "hypervisor", 1, 0, Ecx, 31 }, "" },
        { { "vme", 1, 0, Edx, 1 }, "" },
        { { "pse", 1, 0, Edx, 3 }, "" },
        { { "mce", 1, 0, Edx, 7 }, "" },
        { { "mtrr", 1, 0, Edx, 12 }, "" },
        { { "pge", 1, 0, Edx, 13 }, "" },
        { { "mca", 1, 0, Edx, 14 }, "" },
        { { "pat", 1, 0, Edx, 16 }, "" },
        { { "pse36", 1, 0, Edx, 17 }, "" },
        { { "clflush", 1, 0, Edx, 19 }, "" },
        { { "ht", 1, 0, Edx, 28 }, "" },
        { { "fsgsbase", 7, 0, Ebx, 0 }, "" },
        { { "bmi1", 7, 0, Ebx, 3 }, "" },
        { { "hle", 7, 0, Ebx, 4 }, "" },
        { { "avx2", 7, 0, Ebx, 5 }, "avx" },
        { { "smep", 7, 0, Ebx, 7 }, "" },
        { { "bmi2", 7, 0, Ebx, 8 }, "" },
        { { "erms", 7, 0, Ebx, 9 }, "" },
        { { "invpcid", 7, 0, Ebx, 10 }, "" },
        { { "rtm", 7, 0, Ebx, 11 }, "" },
        { { "avx512f", 7, 0, Ebx, 16 }, "avx" },
        { { "avx512dq", 7, 0, Ebx, 17 }, "avx512f" },
        { { "rdseed", 7, 0, Ebx, 18 }, "" },
        { { "adx", 7, 0, Ebx, 19 }, "" },
        { { "smap", 7, 0, Ebx, 20 }, "" },
        { { "avx512ifma", 7, 0, Ebx, 21 }, "avx512f" },
        { { "clflushopt", 7, 0, Ebx, 23 }, "" },
        { { "clwb", 7, 0, Ebx, 24 }, "" },
        { { "avx512cd", 7, 0, Ebx, 28 }, "avx512f" },
        { { "sha_ni", 7, 0, Ebx, 29 }, "" },
        { { "avx512bw", 7, 0, Ebx, 30 }, "avx512f" },
        { { "avx512vl", 7, 0, Ebx, 31 }, "avx512f" },
        { { "avx512vbmi", 7, 0, Ecx, 1 }, "avx512f" },
        { { "umip", 7, 0, Ecx, 2 }, "" },
        { { "pku", 7, 0, Ecx, 3 }, "" },
        { { "avx512_vbmi2", 7, 0, Ecx, 6 }, "avx512f" },
        { { "gfni", 7, 0, Ecx, 8 }, "" },
        { { "vaes", 7, 0, Ecx, 9 }, "avx" },
        { { "vpclmulqdq", 7, 0, Ecx, 10 }, "avx" },
        { { "avx512_vnni", 7, 0, Ecx, 11 }, "avx512f" },
        { { "avx512_bitalg", 7, 0, Ecx, 12 }, "avx512f" },
        { { "avx512_vpopcntdq", 7, 0, Ecx, 14 }, "avx512f" },
        { { "la57", 7, 0, Ecx, 16 }, "" },
        { { "rdpid", 7, 0, Ecx, 22 }, "" },
        { { "xsaveopt", 0xD, 1, Eax, 0 }, "xsave" },
        { { "xsavec", 0xD, 1, Eax, 1 }, "xsave" },
        { { "xgetbv1", 0xD, 1, Eax, 2 }, "xsave" },
        { { "xsaves", 0xD, 1, Eax, 3 }, "xsave" },
        { { "lahf_lm", 0x8000'0001, 0, Ecx, 0 }, "" },
        { { "abm", 0x8000'0001, 0, Ecx, 5 }, "" },
        { { "3dnowprefetch", 0x8000'0001, 0, Ecx, 8 }, "" },
        { { "pdpe1gb", 0x8000'0001, 0, Edx, 26 }, "" },
        { { "rdtscp", 0x8000'0001, 0, Edx, 27 }, "" },
    };
    return rows;
}

u32& register_of(CpuidEntry& entry, CpuidRegister reg)
{
    switch (reg) {
    case Eax:
        return entry.eax;
    case Ebx:
        return entry.ebx;
    case Ecx:
        return entry.ecx;
    case Edx:
        break;
    }
    return entry.edx;
}

void hide_one(CpuidTable& table, CpuFeature const& feature)
{
    for (auto& entry : table) {
        bool indexed = entry.significant_index;
        if (entry.function == feature.function && (!indexed || entry.index == feature.index))
            register_of(entry, feature.reg) &= ~(u32 { 1 } << feature.bit);
    }
    for (auto const& row : feature_rows()) {
        if (row.parent == feature.name)
            hide_one(table, row.feature);
    }
}

} // namespace

std::vector<CpuFeature> const& known_cpu_features()
{
    static std::vector<CpuFeature> const features = [] {
        std::vector<CpuFeature> result;
        for (auto const& row : feature_rows())
            result.push_back(row.feature);
        return result;
    }();
    return features;
}

ErrorOr<std::vector<CpuFeature>> parse_hidden_features(std::string_view list)
{
    std::vector<CpuFeature> hidden;
    while (!list.empty()) {
        auto comma = list.find(',');
        auto item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view {} : list.substr(comma + 1);
        if (item.empty())
            continue;
        if (item.front() != '-')
            return make_error(fmt::format("--cpu-features: '{}' must start with '-' (features can only be hidden, e.g. -xsave,-cx16)", item));
        auto name = item.substr(1);
        auto const& features = known_cpu_features();
        auto found = std::find_if(features.begin(), features.end(), [&](CpuFeature const& f) { return f.name == name; });
        if (found == features.end()) {
            std::string names;
            for (auto const& feature : features)
                names += fmt::format("{}{}", names.empty() ? "" : " ", feature.name);
            return make_error(fmt::format("--cpu-features: unknown feature '{}'; known features: {}", name, names));
        }
        hidden.push_back(*found);
    }
    return hidden;
}

void hide_features(CpuidTable& table, std::vector<CpuFeature> const& features)
{
    for (auto const& feature : features)
        hide_one(table, feature);
}

} // namespace kasou::arch::x86_64
