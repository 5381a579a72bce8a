#pragma once

#include <cerrno>

namespace kasou::sys::detail {

// Calls `call` again while it fails with EINTR: for the restartable calls of the sys_* files.
template<class Call>
auto retry_on_eintr(Call call)
{
    for (;;) {
        auto result = call();
        if (result >= 0 || errno != EINTR)
            return result;
    }
}

} // namespace kasou::sys::detail
