#include "sched/cpu_set.h"

#include <algorithm>
#include <bit>
#include <charconv>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::sched {

namespace {

// Sysfs files end in a newline; some captured trees also carry NUL padding.
std::string_view strip(std::string_view text)
{
    auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\0'; };
    while (!text.empty() && is_space(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_space(text.back()))
        text.remove_suffix(1);
    return text;
}

// Upper bound on a CPU number accepted from text, so "0-4000000000" cannot exhaust memory.
constexpr u32 MAX_CPU = 1u << 20;

ErrorOr<u32> parse_cpu_number(std::string_view text, std::string_view whole)
{
    u32 value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value >= MAX_CPU)
        return make_error(fmt::format("bad CPU number '{}' in CPU list '{}'", text, whole));
    return value;
}

} // namespace

CpuSet CpuSet::of(std::initializer_list<u32> cpus)
{
    CpuSet set;
    for (u32 cpu : cpus)
        set.add(cpu);
    return set;
}

ErrorOr<CpuSet> CpuSet::parse_list(std::string_view text)
{
    text = strip(text);
    CpuSet set;
    while (!text.empty()) {
        auto comma = text.find(',');
        auto item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
        auto dash = item.find('-');
        u32 low = 0;
        u32 high = 0;
        if (dash == std::string_view::npos) {
            low = high = TRY(parse_cpu_number(item, item));
        } else {
            low = TRY(parse_cpu_number(item.substr(0, dash), item));
            high = TRY(parse_cpu_number(item.substr(dash + 1), item));
        }
        if (high < low)
            return make_error(fmt::format("bad CPU range '{}': end before start", item));
        for (u32 cpu = low; cpu <= high; ++cpu)
            set.add(cpu);
    }
    return set;
}

ErrorOr<CpuSet> CpuSet::parse_mask(std::string_view text)
{
    text = strip(text);
    std::vector<u32> words; // least significant first
    while (!text.empty()) {
        auto comma = text.rfind(',');
        auto item = comma == std::string_view::npos ? text : text.substr(comma + 1);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(0, comma);
        u32 word = 0;
        auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), word, 16);
        if (item.empty() || item.size() > 8 || error != std::errc() || end != item.data() + item.size())
            return make_error(fmt::format("bad CPU mask word '{}'", item));
        words.push_back(word);
    }
    if (words.size() * 32 > MAX_CPU)
        return make_error("CPU mask too long");
    CpuSet set;
    for (size_t i = 0; i < words.size(); ++i) {
        for (u32 bit = 0; bit < 32; ++bit) {
            if (words[i] & (1u << bit))
                set.add(u32(i * 32 + bit));
        }
    }
    return set;
}

void CpuSet::add(u32 cpu)
{
    if (cpu / 64 >= m_words.size())
        m_words.resize(cpu / 64 + 1, 0);
    m_words[cpu / 64] |= u64(1) << (cpu % 64);
}

void CpuSet::remove(u32 cpu)
{
    if (cpu / 64 < m_words.size()) {
        m_words[cpu / 64] &= ~(u64(1) << (cpu % 64));
        trim();
    }
}

bool CpuSet::contains(u32 cpu) const
{
    return cpu / 64 < m_words.size() && (m_words[cpu / 64] >> (cpu % 64)) & 1;
}

u32 CpuSet::count() const
{
    u32 total = 0;
    for (u64 word : m_words)
        total += u32(std::popcount(word));
    return total;
}

u32 CpuSet::first() const
{
    for (size_t i = 0; i < m_words.size(); ++i) {
        if (m_words[i])
            return u32(i * 64 + u32(std::countr_zero(m_words[i])));
    }
    return 0;
}

std::vector<u32> CpuSet::to_vector() const
{
    std::vector<u32> cpus;
    for (size_t i = 0; i < m_words.size(); ++i) {
        for (u64 word = m_words[i]; word; word &= word - 1)
            cpus.push_back(u32(i * 64 + u32(std::countr_zero(word))));
    }
    return cpus;
}

std::string CpuSet::to_list() const
{
    std::string text;
    auto cpus = to_vector();
    for (size_t i = 0; i < cpus.size();) {
        size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
            ++j;
        if (!text.empty())
            text += ',';
        text += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
        i = j + 1;
    }
    return text;
}

CpuSet CpuSet::operator&(CpuSet const& other) const
{
    CpuSet result;
    result.m_words.resize(std::min(m_words.size(), other.m_words.size()));
    for (size_t i = 0; i < result.m_words.size(); ++i)
        result.m_words[i] = m_words[i] & other.m_words[i];
    result.trim();
    return result;
}

CpuSet CpuSet::operator|(CpuSet const& other) const
{
    CpuSet result = m_words.size() >= other.m_words.size() ? *this : other;
    CpuSet const& smaller = m_words.size() >= other.m_words.size() ? other : *this;
    for (size_t i = 0; i < smaller.m_words.size(); ++i)
        result.m_words[i] |= smaller.m_words[i];
    return result;
}

CpuSet CpuSet::operator-(CpuSet const& other) const
{
    CpuSet result = *this;
    for (size_t i = 0; i < std::min(m_words.size(), other.m_words.size()); ++i)
        result.m_words[i] &= ~other.m_words[i];
    result.trim();
    return result;
}

bool CpuSet::intersects(CpuSet const& other) const
{
    for (size_t i = 0; i < std::min(m_words.size(), other.m_words.size()); ++i) {
        if (m_words[i] & other.m_words[i])
            return true;
    }
    return false;
}

bool CpuSet::is_subset_of(CpuSet const& other) const { return (*this - other).empty(); }

bool CpuSet::operator<(CpuSet const& other) const
{
    if (m_words.size() != other.m_words.size())
        return m_words.size() < other.m_words.size();
    return std::lexicographical_compare(m_words.rbegin(), m_words.rend(), other.m_words.rbegin(), other.m_words.rend());
}

void CpuSet::trim()
{
    while (!m_words.empty() && m_words.back() == 0)
        m_words.pop_back();
}

} // namespace kasou::sched
