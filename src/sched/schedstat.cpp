#include "sched/schedstat.h"

#include <charconv>
#include <string>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::sched {

ErrorOr<ThreadTimes> parse_schedstat(std::string_view text)
{
    u64 values[2] = {};
    char const* cursor = text.data();
    char const* end = text.data() + text.size();
    for (u64& value : values) {
        while (cursor < end && *cursor == ' ')
            ++cursor;
        auto [next, error] = std::from_chars(cursor, end, value);
        if (error != std::errc() || next == cursor)
            return make_error(fmt::format("malformed schedstat '{}'", text.substr(0, 64)));
        cursor = next;
    }
    return ThreadTimes { values[0], values[1] };
}

ErrorOr<ThreadTimes> read_schedstat(pid_t pid, pid_t tid)
{
    auto path = fmt::format("/proc/{}/task/{}/schedstat", pid, tid);
    auto text = TRY(sys::read_file(path));
    auto times = parse_schedstat(text);
    if (!times)
        return tl::unexpected(times.error().with_prefix(path));
    return times;
}

} // namespace kasou::sched
