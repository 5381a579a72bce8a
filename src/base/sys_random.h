#pragma once

// System call wrappers: the kernel's random source.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <cstddef>

#include "base/error.h"

namespace kasou::sys {

// getrandom(2) without flags: fills up to size bytes from the urandom source and returns how many
// it filled (fewer than asked only beyond 256 bytes).
ErrorOr<size_t> getrandom(void* buffer, size_t size);

} // namespace kasou::sys
