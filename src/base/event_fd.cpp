#include "base/event_fd.h"

#include <cerrno>
#include <sys/eventfd.h>

#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/try.h"

namespace kasou {

ErrorOr<EventFd> EventFd::create()
{
    Fd fd = TRY(sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    return EventFd(std::move(fd));
}

ErrorOr<void> EventFd::signal(u64 count) const
{
    TRY(sys::write_exact(m_fd.get(), &count, sizeof(count)));
    return {};
}

ErrorOr<u64> EventFd::consume() const
{
    u64 value = 0;
    auto result = sys::read(m_fd.get(), &value, sizeof(value));
    if (!result) {
        if (result.error().code() == EAGAIN)
            return 0;
        return tl::unexpected(result.error());
    }
    return value;
}

} // namespace kasou
