#include "virtio/adaptive_poll.h"

#include <algorithm>

namespace kasou::virtio {

AdaptivePoll::AdaptivePoll(Nanoseconds maximum)
    : m_maximum(std::max(maximum, Nanoseconds { 0 }))
{
}

void AdaptivePoll::record(Nanoseconds waited)
{
    if (waited <= m_window)
        return;
    if (waited > m_maximum) {
        m_window /= 2;
        if (m_window < INITIAL_WINDOW)
            m_window = Nanoseconds { 0 };
        return;
    }
    m_window = std::min(m_maximum, m_window == Nanoseconds { 0 } ? INITIAL_WINDOW : m_window * 2);
}

} // namespace kasou::virtio
