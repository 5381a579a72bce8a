#pragma once

#include <string>
#include <string_view>
#include <initializer_list>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::sched {

// A set of logical CPU numbers, unbounded (machines with thousands of CPUs exist). Parses and prints
// the two encodings Linux uses in sysfs and procfs: the list form "0-3,8,10-11" (cpulist,
// *_list files, cpuset.cpus) and the mask form "0000,000000ff" (cpumap, shared_cpu_map: 32-bit hex
// words, most significant first). Invariant: no trailing zero words, so equal sets compare equal.
class CpuSet {
public:
    CpuSet() = default;
    static CpuSet of(std::initializer_list<u32> cpus);
    // "0-3,8"; empty text (or only whitespace / NUL padding) is the empty set.
    static ErrorOr<CpuSet> parse_list(std::string_view text);
    // "ff,00000001": comma-separated hex words, most significant first.
    static ErrorOr<CpuSet> parse_mask(std::string_view text);

    void add(u32 cpu);
    void remove(u32 cpu);
    bool contains(u32 cpu) const;
    bool empty() const { return m_words.empty(); }
    u32 count() const;
    // Lowest member; only meaningful when !empty().
    u32 first() const;
    std::vector<u32> to_vector() const;
    // The list form, "0-3,8"; "" for the empty set.
    std::string to_list() const;

    CpuSet operator&(CpuSet const& other) const;
    CpuSet operator|(CpuSet const& other) const;
    CpuSet operator-(CpuSet const& other) const;
    bool intersects(CpuSet const& other) const;
    bool is_subset_of(CpuSet const& other) const;
    bool operator==(CpuSet const&) const = default;
    // Orders by content so sets can key a std::map.
    bool operator<(CpuSet const& other) const;

private:
    void trim();
    std::vector<u64> m_words;
};

} // namespace kasou::sched
