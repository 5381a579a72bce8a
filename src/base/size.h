#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "base/types.h"

namespace kasou {

// Parses a size such as "4096", "512M", "2G", "64KiB" or "1.5G" (binary units: K = 1024) into bytes.
// Rejects empty, negative, fractional-byte and overflowing values with a message naming the input.
ErrorOr<u64> parse_size(std::string_view text);

// Formats bytes for people: "512 MiB", "1.5 GiB", "4096 B".
std::string format_size(u64 bytes);

} // namespace kasou
