#pragma once

// Arithmetic on values read from outside (disks, clients, guests) that reports overflow instead of
// wrapping: nullopt when the exact result does not fit in T.

#include <optional>
#include <type_traits>

namespace kasou {

template<class T>
    requires std::is_integral_v<T>
constexpr std::optional<T> checked_add(T a, T b)
{
    T result {};
    return __builtin_add_overflow(a, b, &result) ? std::nullopt : std::optional<T>(result);
}

template<class T>
    requires std::is_integral_v<T>
constexpr std::optional<T> checked_mul(T a, T b)
{
    T result {};
    return __builtin_mul_overflow(a, b, &result) ? std::nullopt : std::optional<T>(result);
}

} // namespace kasou
