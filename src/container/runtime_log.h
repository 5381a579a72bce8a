#pragma once

// The runtime's own log, as `--log FILE --log-format json|text` asks: containerd's runc shim reads
// the file after a failed command and shows the message of the last "error" line to its user.

#include <string>
#include <string_view>

#include "base/error.h"
#include "base/fd.h"

namespace kasou::container {

// Appends one line per message to the --log file (JSON lines {"level","msg","time"} or text);
// without a file, messages go to standard error only. Every error also goes to standard error.
// Writes are single write(2) calls on an O_APPEND descriptor, so lines from a container's
// processes and the command never interleave within a line.
class RuntimeLog {
public:
    enum class Format { Text, Json };

    // An empty path logs nowhere but standard error.
    static ErrorOr<RuntimeLog> open(std::string const& path, std::string_view format);
    static ErrorOr<Format> parse_format(std::string_view format);

    // --debug: info messages go to standard error too.
    void set_verbose(bool verbose) { m_verbose = verbose; }

    void error(std::string_view message) const;
    void warning(std::string_view message) const;
    void info(std::string_view message) const;

private:
    RuntimeLog(Fd fd, Format format)
        : m_fd(std::move(fd))
        , m_format(format)
    {
    }
    void write(std::string_view level, std::string_view message) const;

    Fd m_fd;
    Format m_format { Format::Text };
    bool m_verbose { false };
};

} // namespace kasou::container
