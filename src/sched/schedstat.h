#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "base/types.h"

namespace kasou::sched {

// One reading of a thread's scheduler statistics (/proc/PID/task/TID/schedstat, see the kernel's
// Documentation/scheduler/sched-stats.rst): nanoseconds spent running on a CPU and nanoseconds spent
// runnable but waiting for one, since the thread started.
struct ThreadTimes {
    u64 run_ns { 0 };
    u64 wait_ns { 0 };
};

ErrorOr<ThreadTimes> read_schedstat(pid_t pid, pid_t tid);
// Parses the file's text: "<run_ns> <wait_ns> <timeslices>".
ErrorOr<ThreadTimes> parse_schedstat(std::string_view text);

} // namespace kasou::sched
