#include "storage/nbd/transmission.h"

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/try.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

namespace {

// Block status replies stop after this many descriptors (the protocol lets a server describe less
// than was asked, as long as it describes something).
constexpr size_t MAX_DESCRIPTORS = 64 * 1024;

iovec vector_of(void const* data, size_t size) { return { const_cast<void*>(data), size }; }

// `bytes` of buffer for a request: the worker's kept buffer when small, else a mapping the request
// owns (and unmaps when done, so no worker holds on to the largest buffer it ever needed).
ErrorOr<std::span<u8>> request_buffer(Mapping& large, AlignedBuffer& kept, size_t bytes)
{
    if (bytes <= Transmission::KEPT_BUFFER) {
        auto whole = TRY(kept.reserve(Transmission::KEPT_BUFFER));
        return whole.first(bytes);
    }
    large = TRY(Mapping::anonymous(bytes));
    return large.bytes();
}

void store_chunk_header(u8* p, u16 flags, u16 type, u64 cookie, u32 length)
{
    store_be32(p, NBD_STRUCTURED_REPLY_MAGIC);
    store_be16(p + 4, flags);
    store_be16(p + 6, type);
    store_be64(p + 8, cookie);
    store_be32(p + 16, length);
}

} // namespace

Transmission::Transmission(BufferedReader& reader, Transport& transport, Session const& session, ConnectionEnvironment const& environment, u32 max_payload)
    : m_reader(reader)
    , m_transport(transport)
    , m_session(session)
    , m_max_workers(std::max<u32>(environment.max_workers, 1))
    , m_budget(environment.budget)
    , m_monitor(environment.monitor)
{
    auto const& device = *session.export_entry->device;
    m_limits = RequestLimits {
        .export_size = device.size(),
        .read_only = device.read_only(),
        .structured_replies = session.structured_replies,
        .base_allocation = session.base_allocation,
        .max_payload = max_payload,
        .max_skipped_payload = MAX_PAYLOAD,
    };
}

ErrorOr<void> Transmission::run()
{
    work();
    // Workers start workers only while holding the receive lock and not stopping; once this
    // thread's loop has ended nobody receives any more, so the list can only shrink.
    for (;;) {
        std::vector<std::thread> workers;
        {
            std::lock_guard lock(m_receive_mutex);
            workers.swap(m_workers);
        }
        if (workers.empty())
            break;
        for (auto& worker : workers)
            worker.join();
    }
    std::lock_guard lock(m_error_mutex);
    if (m_error)
        return tl::unexpected(*m_error);
    return {};
}

void Transmission::fail(Error error)
{
    {
        std::lock_guard lock(m_error_mutex);
        if (!m_error)
            m_error = std::move(error);
    }
    m_stopping = true;
    m_monitor.request_stop(); // a receiver waiting for memory gives up
    m_transport.stop_reading();
}

void Transmission::maybe_add_worker()
{
    // Called with m_receive_mutex held.
    if (m_reader.buffered() == 0 || m_waiting_receivers.load() != 0 || m_workers.size() + 1 >= m_max_workers)
        return;
    try {
        m_workers.emplace_back([this] { work(); });
    } catch (std::system_error const& error) {
        spdlog::debug("nbd: cannot start another worker ({}); going on with {}", error.what(), m_workers.size() + 1);
    }
}

void Transmission::work()
{
    AlignedBuffer kept;
    auto stop = m_monitor.stop_token();
    for (;;) {
        std::optional<Job> job;
        {
            ++m_waiting_receivers;
            std::unique_lock lock(m_receive_mutex);
            --m_waiting_receivers;
            if (m_stopping || stop.stop_requested())
                return;
            auto received = receive(kept);
            if (!received) {
                lock.unlock();
                fail(received.error());
                return;
            }
            if (!*received) {
                m_stopping = true;
                return;
            }
            job = std::move(*received);
            maybe_add_worker();
        }
        auto executed = execute(*job, kept);
        job.reset(); // frees its memory before the next request is read
        m_monitor.request_finished();
        if (!executed) {
            fail(executed.error());
            return;
        }
    }
}

auto Transmission::receive(AlignedBuffer& kept) -> ErrorOr<std::optional<Job>>
{
    u8 header[REQUEST_SIZE];
    if (!TRY(m_reader.read_exact(header)))
        return std::optional<Job> {};
    Job job { .request = decode_request(header), .check = {}, .memory = {}, .large = {} };
    job.check = check_request(job.request, m_limits);
    auto const& check = job.check;
    if (check.verdict == RequestCheck::Verdict::Disconnect)
        return make_error(check.reason);
    if (job.request.type == NBD_CMD_DISC && check.verdict == RequestCheck::Verdict::Execute)
        return std::optional<Job> {};
    m_monitor.request_received();
    if (check.verdict == RequestCheck::Verdict::Reject) {
        TRY(m_reader.skip(check.payload_length));
        return std::optional<Job> { std::move(job) };
    }
    u64 charge = job.request.type == NBD_CMD_READ ? std::min<u64>(job.request.length, READ_PIECE) : check.payload_length;
    if (charge > 0) {
        // Back-pressure: nothing more is read from this connection until the memory is there.
        auto memory = m_budget.acquire(charge, m_monitor.stop_token());
        if (!memory && memory.error().code() == ECANCELED)
            return std::optional<Job> {};
        job.memory = TRY(std::move(memory));
    }
    if (check.payload_length > 0) {
        auto data = TRY(request_buffer(job.large, kept, check.payload_length));
        if (!TRY(m_reader.read_exact(data)))
            return make_error(ErrorKind::Disconnected, "the client closed the connection in the middle of a write payload");
    }
    return std::optional<Job> { std::move(job) };
}

ErrorOr<void> Transmission::execute(Job& job, AlignedBuffer& kept)
{
    auto const& request = job.request;
    if (job.check.verdict == RequestCheck::Verdict::Reject) {
        spdlog::warn("nbd: export '{}': refused {}: {}", m_session.export_entry->name, command_name(request.type), job.check.reason);
        return reply_error(request, job.check.error, job.check.reason);
    }
    BlockDevice& device = *m_session.export_entry->device;
    bool const fua = request.flags & NBD_CMD_FLAG_FUA;
    ErrorOr<void> result;
    switch (request.type) {
    case NBD_CMD_READ:
        return execute_read(job, kept);
    case NBD_CMD_BLOCK_STATUS:
        return execute_block_status(request);
    case NBD_CMD_WRITE:
        result = device.write(request.offset, job.large.size() > 0 ? job.large.bytes() : kept.span(request.length), fua);
        // The reply may wait for a client that does not read: it holds no data meanwhile.
        job.large = {};
        job.memory.reset();
        break;
    case NBD_CMD_FLUSH:
        result = device.flush();
        break;
    case NBD_CMD_TRIM:
        result = device.discard(request.offset, request.length);
        if (result && fua)
            result = device.flush();
        break;
    case NBD_CMD_WRITE_ZEROES:
        result = device.write_zeroes(request.offset, request.length, !(request.flags & NBD_CMD_FLAG_NO_HOLE));
        if (result && fua)
            result = device.flush();
        break;
    default:
        return make_error(fmt::format("internal: {} reached execution", command_name(request.type)));
    }
    if (!result) {
        spdlog::warn("nbd: export '{}': {} at offset {} failed: {}", m_session.export_entry->name, command_name(request.type), request.offset, result.error().to_string());
        return reply_error(request, nbd_error_for(result.error()), result.error().to_string());
    }
    return send_simple(request.cookie, 0);
}

ErrorOr<void> Transmission::execute_read(Job& job, AlignedBuffer& kept)
{
    auto const& request = job.request;
    auto& device = *m_session.export_entry->device;
    size_t const piece = job.memory.bytes();
    auto data = TRY(request_buffer(job.large, kept, piece));
    // The first piece is read before anything is sent, so that a failure can still be reported.
    if (auto result = device.read(request.offset, data); !result) {
        spdlog::warn("nbd: export '{}': NBD_CMD_READ at offset {} failed: {}", m_session.export_entry->name, request.offset, result.error().to_string());
        return reply_error(request, nbd_error_for(result.error()), result.error().to_string());
    }
    u8 header[STRUCTURED_REPLY_SIZE + 8];
    size_t header_size = 0;
    if (m_session.structured_replies) {
        store_chunk_header(header, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, request.cookie, 8 + request.length);
        store_be64(header + STRUCTURED_REPLY_SIZE, request.offset);
        header_size = STRUCTURED_REPLY_SIZE + 8;
    } else {
        store_be32(header, NBD_SIMPLE_REPLY_MAGIC);
        store_be32(header + 4, 0);
        store_be64(header + 8, request.cookie);
        header_size = SIMPLE_REPLY_SIZE;
    }
    std::lock_guard lock(m_send_mutex);
    iovec vectors[] = { vector_of(header, header_size), vector_of(data.data(), data.size()) };
    TRY(m_transport.write_all(vectors));
    // The rest, a piece at a time. The reply has begun and promised the whole length in one chunk
    // (NBD_CMD_FLAG_DF holds), so a failure now can only close the connection.
    for (u64 done = piece; done < request.length; done += piece) {
        auto next = data.first(std::min<u64>(piece, request.length - done));
        if (auto result = device.read(request.offset + done, next); !result)
            return tl::unexpected(result.error().with_prefix(fmt::format("NBD_CMD_READ at offset {}, after its reply had begun", request.offset + done)));
        iovec vector = vector_of(next.data(), next.size());
        TRY(m_transport.write_all({ &vector, 1 }));
    }
    return {};
}

ErrorOr<void> Transmission::execute_block_status(Request const& request)
{
    auto extents = m_session.export_entry->device->block_status(request.offset, request.length);
    if (!extents) {
        spdlog::warn("nbd: export '{}': NBD_CMD_BLOCK_STATUS at offset {} failed: {}", m_session.export_entry->name, request.offset, extents.error().to_string());
        return reply_error(request, nbd_error_for(extents.error()), extents.error().to_string());
    }
    // Descriptors: (length, flags) runs, neighbours with equal flags merged, clipped to the request.
    std::vector<std::pair<u32, u32>> descriptors;
    u64 const end = request.offset + request.length;
    size_t const limit = (request.flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : MAX_DESCRIPTORS;
    for (auto const& extent : *extents) {
        u64 from = std::max(extent.offset, request.offset);
        u64 to = std::min(extent.offset + extent.length, end);
        if (to <= from)
            continue;
        u32 flags = (extent.allocated ? 0 : NBD_STATE_HOLE) | (extent.zero ? NBD_STATE_ZERO : 0);
        auto length = static_cast<u32>(to - from); // within a u32 request
        if (!descriptors.empty() && descriptors.back().second == flags)
            descriptors.back().first += length;
        else if (descriptors.size() < limit)
            descriptors.emplace_back(length, flags);
        else
            break;
    }
    if (descriptors.empty())
        return reply_error(request, NBD_EIO, "the device described no extent");

    WireWriter payload;
    payload.u32_field(1); // the base:allocation context id handed out in negotiation
    for (auto [length, flags] : descriptors) {
        payload.u32_field(length);
        payload.u32_field(flags);
    }
    u8 header[STRUCTURED_REPLY_SIZE];
    store_chunk_header(header, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, request.cookie, static_cast<u32>(payload.data().size()));
    iovec vectors[] = { vector_of(header, sizeof(header)), vector_of(payload.data().data(), payload.data().size()) };
    return send(vectors);
}

ErrorOr<void> Transmission::reply_error(Request const& request, u32 error, std::string_view message)
{
    bool const needs_chunk = request.type == NBD_CMD_READ || request.type == NBD_CMD_BLOCK_STATUS;
    if (!(m_session.structured_replies && needs_chunk))
        return send_simple(request.cookie, error);
    message = message.substr(0, MAX_STRING);
    u8 header[STRUCTURED_REPLY_SIZE + 6];
    store_chunk_header(header, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, request.cookie, static_cast<u32>(6 + message.size()));
    store_be32(header + STRUCTURED_REPLY_SIZE, error);
    store_be16(header + STRUCTURED_REPLY_SIZE + 4, static_cast<u16>(message.size()));
    iovec vectors[] = { vector_of(header, sizeof(header)), vector_of(message.data(), message.size()) };
    return send(vectors);
}

ErrorOr<void> Transmission::send_simple(u64 cookie, u32 error)
{
    u8 header[SIMPLE_REPLY_SIZE];
    store_be32(header, NBD_SIMPLE_REPLY_MAGIC);
    store_be32(header + 4, error);
    store_be64(header + 8, cookie);
    iovec vector = vector_of(header, sizeof(header));
    return send({ &vector, 1 });
}

ErrorOr<void> Transmission::send(std::span<iovec const> vectors)
{
    std::lock_guard lock(m_send_mutex);
    return m_transport.write_all(vectors);
}

} // namespace kasou::storage::nbd
