#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "arch/x86_64/cpu_state.h"

#include "base/error.h"
#include "base/types.h"

namespace kasou::arch::x86_64 {

enum class CpuidRegister { Eax, Ebx, Ecx, Edx };

// One CPUID feature flag by its Linux /proc/cpuinfo name.
struct CpuFeature {
    std::string_view name;
    u32 function;
    u32 index;
    CpuidRegister reg;
    u32 bit;
};

// The features kasou can hide, by name. Hiding a feature also hides the ones that depend on it
// (hiding xsave hides avx and its successors, as a kernel would find them unusable anyway).
std::vector<CpuFeature> const& known_cpu_features();

// Parses "-xsave,-cx16" into the features to hide. Unknown names and anything but '-' entries
// are refused with a message listing the known names.
ErrorOr<std::vector<CpuFeature>> parse_hidden_features(std::string_view list);

// Clears each feature (and its dependants) in the table.
void hide_features(CpuidTable& table, std::vector<CpuFeature> const& features);

} // namespace kasou::arch::x86_64
