#pragma once

// System call wrappers: CPU affinity of threads.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <cstddef>
#include <sys/types.h>

#include "base/error.h"

namespace kasou::sys {

// Sets / reads the CPU affinity of thread `tid` (0: the caller); mask is a cpu_set_t-style bitmap
// of mask_bytes bytes, so machines beyond CPU_SETSIZE work.
ErrorOr<void> sched_setaffinity(pid_t tid, size_t mask_bytes, void const* mask);
ErrorOr<void> sched_getaffinity(pid_t tid, size_t mask_bytes, void* mask);

} // namespace kasou::sys
