#include "virtio/host_events.h"


#include "base/sys_event.h"
#include "base/try.h"

namespace kasou::virtio {

ErrorOr<HostEvents> HostEvents::create()
{
    return HostEvents(TRY(sys::epoll_create()));
}

ErrorOr<void> HostEvents::add(int source, u32 events, u64 token)
{
    return sys::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, source, events | EPOLLET, token);
}

ErrorOr<void> HostEvents::modify(int source, u32 events, u64 token)
{
    return sys::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, source, events | EPOLLET, token);
}

void HostEvents::remove(int source)
{
    // Fails only for a descriptor that was never added, which leaves nothing to undo.
    (void)sys::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, source, 0, 0);
}

ErrorOr<std::vector<epoll_event>> HostEvents::take()
{
    std::vector<epoll_event> events(32);
    u32 ready = TRY(sys::epoll_wait(m_epoll.get(), events, 0));
    events.resize(ready);
    return events;
}

ErrorOr<std::optional<DescriptorChain>> pop_or_request_notification(SplitQueue& queue)
{
    if (auto chain = TRY(queue.pop()))
        return chain;
    queue.request_notification();
    return queue.pop();
}

} // namespace kasou::virtio
