#include "virtio/pause_gate.h"

#include "base/try.h"

namespace kasou::virtio {

ErrorOr<std::unique_ptr<PauseGate>> PauseGate::create()
{
    return std::unique_ptr<PauseGate>(new PauseGate(TRY(EventFd::create())));
}

void PauseGate::pause()
{
    std::unique_lock lock(m_lock);
    m_pause_requested = true;
    (void)m_event.signal();
    m_changed.wait(lock, [this] { return m_parked || !m_running; });
}

void PauseGate::resume()
{
    std::lock_guard guard(m_lock);
    m_pause_requested = false;
    (void)m_event.consume();
    m_changed.notify_all();
}

void PauseGate::started()
{
    std::lock_guard guard(m_lock);
    m_running = true;
}

void PauseGate::ended()
{
    std::lock_guard guard(m_lock);
    m_running = false;
    m_changed.notify_all();
}

void PauseGate::park()
{
    std::unique_lock lock(m_lock);
    (void)m_event.consume();
    if (!m_pause_requested)
        return;
    m_parked = true;
    m_changed.notify_all();
    m_changed.wait(lock, [this] { return !m_pause_requested; });
    m_parked = false;
}

} // namespace kasou::virtio
