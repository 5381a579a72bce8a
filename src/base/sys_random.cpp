#include "base/sys_random.h"

#include <cerrno>
#include <sys/random.h>

#include "base/sys_retry.h"

namespace kasou::sys {

ErrorOr<size_t> getrandom(void* buffer, size_t size)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::getrandom(buffer, size, 0); });
    if (n < 0)
        return make_errno_error(errno, "getrandom");
    return static_cast<size_t>(n);
}

} // namespace kasou::sys
