#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace kasou {

// Replaces the file at path with text so that a crash at any moment leaves either the old content
// or the new one, never a mix: writes PATH.tmp, fsyncs it, renames it over path and fsyncs the
// directory. Concurrent writers of one path must serialize (they share PATH.tmp).
ErrorOr<void> write_file_atomically(std::string const& path, std::string_view text);

} // namespace kasou
