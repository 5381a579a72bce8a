#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/mapping.h"
#include "storage/io/aligned_buffer.h"
#include "storage/nbd/connection.h"
#include "storage/nbd/negotiation.h"
#include "storage/nbd/request_parser.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// The transmission phase of one connection: reads requests, runs them on the export's device,
// sends replies (simple, or structured chunks for reads, block status and their errors when the
// client negotiated them).
//
// Concurrency (leader / followers): up to max_workers threads take turns as the receiver. The
// receiver holds m_receive_mutex while it reads one request and its payload, releases it and runs
// the request on the device, then sends the reply under m_send_mutex; meanwhile the next thread
// receives. Replies therefore leave in completion order, matched by cookie. A request at queue
// depth 1 runs on the thread that read it, with no hand-off; a second worker thread is started
// only when the client pipelines (more requests already buffered and no idle receiver). So at
// most max_workers requests of one connection are in flight.
//
// Memory: every request's data is charged to the server-wide MemoryBudget before it is allocated
// — a write its payload, a read one piece (reads longer than READ_PIECE are sent as one reply
// whose data is read and sent a piece at a time). The receiver waits for the charge with the
// receive lock held, so a connection whose request does not fit reads nothing more until memory
// is released. Buffers up to KEPT_BUFFER come from a buffer each worker keeps; larger ones are
// mapped for the request and unmapped when it is done (a write's before its reply is sent).
// Lock order: m_receive_mutex, then m_send_mutex; the device is called with neither held, except
// for the later pieces of a long read, which are read with m_send_mutex held (the reply has begun).
class Transmission {
public:
    static constexpr size_t KEPT_BUFFER = 64 * 1024;
    static constexpr size_t READ_PIECE = 1024 * 1024;

    Transmission(BufferedReader& reader, Transport& transport, Session const& session, ConnectionEnvironment const& environment, u32 max_payload);
    Transmission(Transmission const&) = delete;
    Transmission& operator=(Transmission const&) = delete;

    // Serves until the client sends NBD_CMD_DISC or closes, the transport stops reading, the
    // connection's monitor asks it to stop, or a request breaks the stream; every request received
    // by then is answered. Returns the error that closed the connection, if any.
    ErrorOr<void> run();

private:
    struct Job {
        Request request;
        RequestCheck check;
        MemoryBudget::Reservation memory; // charged for the request's data
        Mapping large;                    // its buffer when larger than KEPT_BUFFER
    };

    void work();
    // Reads the next request and its payload (into `kept` or the job's own mapping); nullopt
    // when the stream ended.
    ErrorOr<std::optional<Job>> receive(AlignedBuffer& kept);
    ErrorOr<void> execute(Job& job, AlignedBuffer& kept);
    ErrorOr<void> execute_read(Job& job, AlignedBuffer& kept);
    ErrorOr<void> execute_block_status(Request const& request);
    ErrorOr<void> reply_error(Request const& request, u32 error, std::string_view message);
    ErrorOr<void> send_simple(u64 cookie, u32 error);
    ErrorOr<void> send(std::span<iovec const> vectors);
    void fail(Error error);
    void maybe_add_worker();

    BufferedReader& m_reader;
    Transport& m_transport;
    Session m_session;
    RequestLimits m_limits;
    u32 m_max_workers;
    MemoryBudget& m_budget;
    ConnectionMonitor& m_monitor;

    std::mutex m_receive_mutex;
    std::vector<std::thread> m_workers; // guarded by m_receive_mutex
    std::atomic<u32> m_waiting_receivers { 0 };
    std::atomic<bool> m_stopping { false };
    std::mutex m_send_mutex;
    std::mutex m_error_mutex;
    std::optional<Error> m_error; // guarded by m_error_mutex
};

} // namespace kasou::storage::nbd
