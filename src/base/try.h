#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "base/error.h"

// TRY(expr): evaluates an ErrorOr expression; on error returns the error from the enclosing
// function (which must itself return an ErrorOr), otherwise yields the value.
#define TRY(expression)                                          \
    __extension__({                                              \
        auto&& _kasou_result = (expression);                     \
        if (!_kasou_result) [[unlikely]]                         \
            return tl::unexpected(std::move(_kasou_result).error()); \
        ::kasou::detail::take_value(std::move(_kasou_result));   \
    })

// MUST(expr): like TRY, but an error is a bug in kasou itself: report it and abort.
#define MUST(expression)                                                                    \
    __extension__({                                                                         \
        auto&& _kasou_result = (expression);                                                \
        if (!_kasou_result) [[unlikely]]                                                    \
            ::kasou::detail::must_failed(#expression, _kasou_result.error(), __FILE__, __LINE__); \
        ::kasou::detail::take_value(std::move(_kasou_result));                              \
    })

namespace kasou::detail {
// The value of an ErrorOr (or a tl::expected) known to hold one, moved out; nothing for void.
template<class Result>
decltype(auto) take_value(Result&& result)
{
    using Value = typename std::remove_cvref_t<Result>::value_type;
    if constexpr (std::is_void_v<Value>)
        return;
    else
        return Value(std::move(*result));
}
[[noreturn]] void must_failed(char const* expression, Error const& error, char const* file, int line);
}
