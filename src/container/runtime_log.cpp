#include "container/runtime_log.h"

#include <chrono>
#include <fcntl.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::container {

ErrorOr<RuntimeLog::Format> RuntimeLog::parse_format(std::string_view format)
{
    if (format == "text")
        return Format::Text;
    if (format == "json")
        return Format::Json;
    return make_error(fmt::format("--log-format: \"{}\" is neither text nor json", format));
}

ErrorOr<RuntimeLog> RuntimeLog::open(std::string const& path, std::string_view format)
{
    auto parsed = TRY(parse_format(format));
    Fd fd;
    if (!path.empty())
        fd = TRY(sys::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644).map_error([&](Error const& error) {
            return error.with_prefix(fmt::format("--log {}", path));
        }));
    return RuntimeLog(std::move(fd), parsed);
}

void RuntimeLog::error(std::string_view message) const
{
    fmt::print(stderr, "kasou oci: {}\n", message);
    write("error", message);
}

void RuntimeLog::warning(std::string_view message) const
{
    if (!m_fd.valid())
        fmt::print(stderr, "kasou oci: warning: {}\n", message);
    write("warning", message);
}

void RuntimeLog::info(std::string_view message) const
{
    if (m_verbose)
        fmt::print(stderr, "kasou oci: {}\n", message);
    write("info", message);
}

void RuntimeLog::write(std::string_view level, std::string_view message) const
{
    if (!m_fd.valid())
        return;
    auto now = std::chrono::system_clock::now();
    auto time = fmt::format("{:%FT%T}Z", std::chrono::floor<std::chrono::microseconds>(now));
    std::string line;
    if (m_format == Format::Json) {
        nlohmann::json entry = { { "level", level }, { "msg", message }, { "time", time } };
        line = entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
        line = fmt::format("time=\"{}\" level={} msg=\"{}\"\n", time, level, message);
    }
    // The log is best effort: a full disk must not turn a successful command into a failed one.
    (void)sys::write_exact(m_fd.get(), line.data(), line.size());
}

} // namespace kasou::container
