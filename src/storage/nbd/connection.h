#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <span>
#include <stop_token>
#include <string>

#include "base/types.h"
#include "storage/nbd/export.h"
#include "storage/nbd/memory_budget.h"
#include "storage/nbd/negotiation.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// What the server's watchdog sees of one connection, written by the connection's own threads:
// whether it is still negotiating, how many requests are in flight, when it last received or
// finished a request; and the stop request the server gives a connection it closes (waits for
// memory end when it is requested). All members are atomic or thread-safe.
class ConnectionMonitor {
public:
    using Clock = std::chrono::steady_clock;

    ConnectionMonitor()
        : m_last_activity(Clock::now().time_since_epoch().count())
    {
    }

    void negotiated() { m_negotiating = false; }
    void request_received()
    {
        ++m_in_flight;
        touch();
    }
    void request_finished()
    {
        touch();
        --m_in_flight;
    }

    bool negotiating() const { return m_negotiating; }
    // The time since which the connection has had no request in flight, or nullopt when busy.
    std::optional<Clock::time_point> idle_since() const
    {
        if (m_in_flight.load() != 0)
            return std::nullopt;
        return Clock::time_point(Clock::duration(m_last_activity.load()));
    }

    std::stop_token stop_token() const { return m_stop.get_token(); }
    void request_stop() { m_stop.request_stop(); }

private:
    void touch() { m_last_activity = Clock::now().time_since_epoch().count(); }

    std::atomic<bool> m_negotiating { true };
    std::atomic<u32> m_in_flight { 0 };
    std::atomic<Clock::rep> m_last_activity;
    std::stop_source m_stop;
};

// The server-wide parts one connection works with.
struct ConnectionEnvironment {
    u32 max_workers { 4 };      // threads, and so requests in flight, per connection
    MemoryBudget& budget;       // charged for every request buffer
    ConnectionMonitor& monitor; // what the server's watchdog looks at
};

// Serves one client from greeting to close: negotiation, then transmission with up to
// environment.max_workers threads. Whatever goes wrong (a hostile byte stream, a vanished client)
// ends only this connection and is logged with `peer`; the exports are untouched.
void serve_connection(Transport& transport, std::span<Export const> exports, ConnectionEnvironment const& environment, std::string const& peer);

// The transmission phase of a connection whose handshake is done (the server runs the handshake
// on its event loop, then this on the connection's own thread); ends like serve_connection.
void serve_session(Transport& transport, Session const& session, ConnectionEnvironment const& environment, std::string const& peer);

// The largest READ or WRITE length a server with `budget` advertises and accepts: MAX_PAYLOAD, or
// less when the whole budget is smaller.
u32 max_payload_for(MemoryBudget const& budget);

} // namespace kasou::storage::nbd
