#include "base/utf8.h"

namespace kasou {

std::optional<char32_t> decode_utf8(std::string_view text, size_t& at)
{
    auto byte = static_cast<unsigned char>(text[at]);
    size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xe ? 3 : (byte >> 3) == 0x1e ? 4 : 0;
    if (length == 0 || at + length > text.size())
        return std::nullopt;
    char32_t code = length == 1 ? byte : byte & (0x7f >> length);
    for (size_t i = 1; i < length; ++i) {
        auto next = static_cast<unsigned char>(text[at + i]);
        if ((next & 0xc0) != 0x80)
            return std::nullopt;
        code = (code << 6) | (next & 0x3f);
    }
    static constexpr char32_t SMALLEST[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (code < SMALLEST[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return std::nullopt;
    at += length;
    return code;
}

std::optional<size_t> find_invalid_utf8(std::string_view text)
{
    for (size_t at = 0; at < text.size();) {
        if (!decode_utf8(text, at))
            return at;
    }
    return std::nullopt;
}

} // namespace kasou
