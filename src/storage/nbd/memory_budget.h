#pragma once

#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <utility>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage::nbd {

// The server-wide bound on the request data NBD clients can make the server hold: every request
// buffer (a write payload, a piece of a read) is charged here before it is allocated and released
// when the buffer is freed. Invariant: in_use() <= limit() at all times. A request that does not
// fit waits until other requests release memory (its connection reads nothing meanwhile: that is
// the back-pressure); a request larger than the whole limit is refused at once, since no amount of
// waiting would let it fit. Thread-safe; one lock, never held while anything else is locked.
class MemoryBudget {
public:
    // Holds `bytes` of the budget until destroyed. Move-only.
    class Reservation {
    public:
        Reservation() = default;
        ~Reservation() { reset(); }
        Reservation(Reservation&& other) noexcept
            : m_budget(std::exchange(other.m_budget, nullptr))
            , m_bytes(std::exchange(other.m_bytes, 0))
        {
        }
        Reservation& operator=(Reservation&& other) noexcept
        {
            if (this != &other) {
                reset();
                m_budget = std::exchange(other.m_budget, nullptr);
                m_bytes = std::exchange(other.m_bytes, 0);
            }
            return *this;
        }
        Reservation(Reservation const&) = delete;
        Reservation& operator=(Reservation const&) = delete;

        u64 bytes() const { return m_bytes; }
        // Gives the memory back now.
        void reset();

    private:
        friend class MemoryBudget;
        Reservation(MemoryBudget* budget, u64 bytes)
            : m_budget(budget)
            , m_bytes(bytes)
        {
        }
        MemoryBudget* m_budget { nullptr };
        u64 m_bytes { 0 };
    };

    explicit MemoryBudget(u64 limit)
        : m_limit(limit)
    {
    }
    MemoryBudget(MemoryBudget const&) = delete;
    MemoryBudget& operator=(MemoryBudget const&) = delete;

    // Waits until `bytes` fit, then reserves them. Fails with EOVERFLOW for more than limit(), and
    // with ECANCELED if `stop` is requested while waiting.
    ErrorOr<Reservation> acquire(u64 bytes, std::stop_token stop = {});

    u64 limit() const { return m_limit; }
    u64 in_use() const;
    // Requests waiting in acquire() right now.
    u32 waiting() const;

private:
    void release(u64 bytes);

    u64 const m_limit;
    mutable std::mutex m_mutex;
    std::condition_variable_any m_released;
    u64 m_in_use { 0 };  // guarded by m_mutex
    u32 m_waiting { 0 }; // guarded by m_mutex
};

} // namespace kasou::storage::nbd
