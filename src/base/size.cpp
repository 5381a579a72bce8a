#include "base/size.h"

#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace kasou {

ErrorOr<u64> parse_size(std::string_view text)
{
    auto fail = [&](char const* why) { return make_error(fmt::format("invalid size '{}': {}", text, why)); };
    size_t i = 0;
    u64 whole = 0;
    bool any_digit = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        unsigned digit = static_cast<unsigned>(text[i] - '0');
        if (whole > (std::numeric_limits<u64>::max() - digit) / 10)
            return fail("too large");
        whole = whole * 10 + digit;
        any_digit = true;
        ++i;
    }
    u64 fraction = 0;
    u64 fraction_scale = 1;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            if (fraction_scale < 1'000'000'000ULL) {
                fraction = fraction * 10 + static_cast<unsigned>(text[i] - '0');
                fraction_scale *= 10;
            }
            any_digit = true;
            ++i;
        }
    }
    if (!any_digit)
        return fail("expected a number such as 512M or 2G");
    std::string unit;
    for (; i < text.size(); ++i)
        unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    u64 multiplier = 1;
    if (unit.empty() || unit == "B")
        multiplier = 1;
    else if (unit == "K" || unit == "KB" || unit == "KIB")
        multiplier = KiB;
    else if (unit == "M" || unit == "MB" || unit == "MIB")
        multiplier = MiB;
    else if (unit == "G" || unit == "GB" || unit == "GIB")
        multiplier = GiB;
    else if (unit == "T" || unit == "TB" || unit == "TIB")
        multiplier = TiB;
    else
        return fail("unknown unit (use K, M, G or T)");
    if (whole > std::numeric_limits<u64>::max() / multiplier)
        return fail("too large");
    u64 bytes = whole * multiplier;
    if (fraction != 0) {
        // multiplier <= 2^40 and fraction < 10^9 < 2^30: the product fits in 70 bits, so split it.
        __extension__ using u128 = unsigned __int128;
        u128 extra = static_cast<u128>(fraction) * multiplier;
        if (extra % fraction_scale != 0)
            return fail("not a whole number of bytes");
        u64 add = static_cast<u64>(extra / fraction_scale);
        if (bytes > std::numeric_limits<u64>::max() - add)
            return fail("too large");
        bytes += add;
    }
    return bytes;
}

std::string format_size(u64 bytes)
{
    static constexpr char const* units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
    if (bytes < KiB)
        return fmt::format("{} B", bytes);
    double value = static_cast<double>(bytes) / KiB;
    size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < std::size(units)) {
        value /= 1024.0;
        ++unit;
    }
    if (value == static_cast<double>(static_cast<u64>(value)))
        return fmt::format("{} {}", static_cast<u64>(value), units[unit]);
    return fmt::format("{:.1f} {}", value, units[unit]);
}

} // namespace kasou
