#include "base/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace kasou::log {

void init(std::string_view level)
{
    auto logger = spdlog::stderr_logger_mt("kasou");
    logger->set_pattern("kasou: %^%l%$: %v");
    auto parsed = spdlog::level::from_str(std::string(level));
    logger->set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::warn : parsed);
    spdlog::set_default_logger(logger);
}

} // namespace kasou::log
