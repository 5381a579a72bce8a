#pragma once

// The symbolic names config.json uses for kernel numbers: capabilities ("CAP_SYS_ADMIN") and
// resource limits ("RLIMIT_NOFILE"), per capabilities(7) and getrlimit(2).

#include <optional>
#include <string_view>
#include <vector>

namespace kasou::container {

std::optional<int> capability_number(std::string_view name);
// All capability names this runtime knows, in kernel order (CAP_CHOWN = 0 first).
std::vector<std::string_view> capability_names();
// The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap).
int last_capability();

std::optional<int> rlimit_number(std::string_view name);
std::vector<std::string_view> rlimit_names();

} // namespace kasou::container
