#pragma once

// Runs config.json's hooks (runtime-spec config.md "POSIX-platform Hooks"): each hook's program
// with its args and env, the container's state document on its standard input, killed when its
// timeout passes.

#include <string>
#include <vector>

#include "base/error.h"
#include "container/config.h"

namespace kasou::container {

// Runs the hooks in order and stops at the first that fails; `stage` ("createRuntime") names the
// hook in the error. Runs in the caller's namespaces: the caller is where the stage says a hook runs.
ErrorOr<void> run_hooks(std::vector<Hook> const& hooks, std::string_view stage, std::string const& state_json);

} // namespace kasou::container
