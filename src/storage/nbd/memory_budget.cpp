#include "storage/nbd/memory_budget.h"

#include <cerrno>

namespace kasou::storage::nbd {

void MemoryBudget::Reservation::reset()
{
    if (m_budget)
        std::exchange(m_budget, nullptr)->release(std::exchange(m_bytes, 0));
}

ErrorOr<MemoryBudget::Reservation> MemoryBudget::acquire(u64 bytes, std::stop_token stop)
{
    if (bytes > m_limit)
        return make_errno_error(EOVERFLOW, "request larger than the server's memory limit");
    std::unique_lock lock(m_mutex);
    ++m_waiting;
    bool fits = m_released.wait(lock, stop, [&] { return m_limit - m_in_use >= bytes; });
    --m_waiting;
    if (!fits)
        return make_errno_error(ECANCELED, "stopped while waiting for memory");
    m_in_use += bytes;
    return Reservation(this, bytes);
}

void MemoryBudget::release(u64 bytes)
{
    {
        std::lock_guard lock(m_mutex);
        m_in_use -= bytes;
    }
    m_released.notify_all();
}

u64 MemoryBudget::in_use() const
{
    std::lock_guard lock(m_mutex);
    return m_in_use;
}

u32 MemoryBudget::waiting() const
{
    std::lock_guard lock(m_mutex);
    return m_waiting;
}

} // namespace kasou::storage::nbd
