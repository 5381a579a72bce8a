#pragma once

// Logging goes through spdlog to standard error, so a guest's console on standard output stays
// clean. Call log::init once from main(); the spdlog:: functions are then used directly.

#include <string_view>

#include <spdlog/spdlog.h>

namespace kasou::log {

// level: "error", "warn", "info", "debug" or "trace"; anything else keeps "warn".
void init(std::string_view level);

} // namespace kasou::log
