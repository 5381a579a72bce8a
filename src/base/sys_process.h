#pragma once

// System call wrappers: child processes.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <string>
#include <vector>

#include "base/error.h"

namespace kasou::sys {

// Runs argv[0] (looked up in PATH) with argv and waits for it; returns its exit status (128 + signal
// number when it was killed).
ErrorOr<int> spawn_and_wait(std::vector<std::string> const& argv);

} // namespace kasou::sys
