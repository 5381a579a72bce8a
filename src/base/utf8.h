#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace kasou {

// Decodes the UTF-8 character at text[at] and advances at past it; nullopt (at unchanged) when
// the bytes there are not UTF-8: a stray continuation byte, a truncated or overlong sequence, a
// surrogate, or a value past U+10FFFF.
std::optional<char32_t> decode_utf8(std::string_view text, size_t& at);

// The offset of the first byte of text that does not begin a valid UTF-8 character; nullopt when
// all of text is UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view text);

} // namespace kasou
