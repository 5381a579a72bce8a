#include "base/sys_affinity.h"

#include <cerrno>
#include <sched.h>

namespace kasou::sys {

ErrorOr<void> sched_setaffinity(pid_t tid, size_t mask_bytes, void const* mask)
{
    if (::sched_setaffinity(tid, mask_bytes, static_cast<cpu_set_t const*>(mask)) < 0)
        return make_errno_error(errno, "sched_setaffinity");
    return {};
}

ErrorOr<void> sched_getaffinity(pid_t tid, size_t mask_bytes, void* mask)
{
    if (::sched_getaffinity(tid, mask_bytes, static_cast<cpu_set_t*>(mask)) < 0)
        return make_errno_error(errno, "sched_getaffinity");
    return {};
}

} // namespace kasou::sys
