#include "storage/nbd/client_device.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/try.h"
#include "base/sys_socket.h"
#include "base/unix_socket.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

namespace {

// Largest TRIM or WRITE_ZEROES length sent at once (the length field has 32 bits; keep it aligned).
constexpr u64 MAX_RANGE_REQUEST = 1u << 30;

ErrorOr<Fd> connect_tcp(NbdUri const& uri, std::chrono::milliseconds timeout)
{
    addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::string port = std::to_string(uri.port);
    if (int status = ::getaddrinfo(uri.host.c_str(), port.c_str(), &hints, &found); status != 0)
        return make_error(ErrorKind::NotFound, fmt::format("{}: cannot resolve '{}': {}", uri.to_string(), uri.host, ::gai_strerror(status)));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
    std::optional<Error> last;
    for (addrinfo* entry = found; entry; entry = entry->ai_next) {
        auto socket = sys::socket(entry->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (!socket) {
            last = socket.error();
            continue;
        }
        // connect(2) honours the send timeout.
        TRY(sys::setsockopt_timeout(socket->get(), SO_SNDTIMEO, static_cast<u64>(timeout.count())));
        if (auto connected = sys::connect(socket->get(), entry->ai_addr, entry->ai_addrlen); !connected) {
            last = connected.error();
            continue;
        }
        (void)sys::setsockopt(socket->get(), IPPROTO_TCP, TCP_NODELAY, 1);
        return std::move(*socket);
    }
    return tl::unexpected(last.value_or(Error::from_string("no address")).with_prefix(uri.to_string()));
}

} // namespace

ErrorOr<std::shared_ptr<NbdClientDevice>> NbdClientDevice::connect(NbdUri const& uri, ClientOptions const& options)
{
    std::string peer = uri.to_string();
    auto prefixed = [&](Error const& error) { return error.with_prefix(peer); };
    Fd socket = TRY(uri.is_unix() ? connect_unix(uri.unix_path, SOCK_CLOEXEC).map_error(prefixed) : connect_tcp(uri, options.timeout));
    auto transport = std::make_unique<SocketTransport>(std::move(socket), SocketTransport::Peer::Server);
    TRY(transport->set_send_timeout(options.timeout));
    TRY(transport->set_receive_timeout(options.timeout));
    BufferedReader reader(*transport);
    auto info = TRY(client_handshake(reader, *transport, uri.export_name).map_error([&](Error const& error) {
        if (error.code() == EAGAIN || error.code() == EWOULDBLOCK)
            return Error::from_string(fmt::format("{}: no answer within {} ms during the handshake", peer, options.timeout.count()), ErrorKind::TimedOut);
        return error.with_prefix(fmt::format("{}: handshake", peer));
    }));
    if (reader.buffered() != 0)
        return make_error(fmt::format("{}: the server sent data before any request", peer));
    // From here a silent server is noticed by the requests waiting for it, not by the reader.
    TRY(transport->set_receive_timeout(std::chrono::milliseconds(0)));
    spdlog::info("nbd client: {}: {} bytes{}{}", peer, info.size, info.flags & NBD_FLAG_READ_ONLY ? ", read-only" : "",
        info.structured_replies ? ", structured replies" : "");
    return std::shared_ptr<NbdClientDevice>(new NbdClientDevice(std::move(transport), info, std::move(peer), options));
}

NbdClientDevice::NbdClientDevice(std::unique_ptr<SocketTransport> transport, ExportInfo info, std::string peer, ClientOptions const& options)
    : m_transport(std::move(transport))
    , m_reader(*m_transport)
    , m_info(info)
    , m_peer(std::move(peer))
    , m_options(options)
{
    m_reader_thread = std::thread([this] { read_replies(); });
}

NbdClientDevice::~NbdClientDevice()
{
    {
        std::lock_guard send(m_send_mutex);
        u8 header[REQUEST_SIZE];
        encode_request({ .magic = NBD_REQUEST_MAGIC, .flags = 0, .type = NBD_CMD_DISC, .cookie = 0, .offset = 0, .length = 0 }, header);
        iovec vector { header, sizeof(header) };
        std::lock_guard lock(m_mutex);
        if (!m_broken) {
            (void)m_transport->write_all({ &vector, 1 });
            m_broken = Error::from_string(fmt::format("{}: the device is closed", m_peer), ErrorKind::Disconnected);
        }
    }
    m_transport->disconnect();
    m_reader_thread.join();
}

bool NbdClientDevice::read_only() const { return has(NBD_FLAG_READ_ONLY); }

u32 NbdClientDevice::logical_block_size() const { return std::max<u32>(512, m_info.minimum_block); }

void NbdClientDevice::break_connection(Error const& why)
{
    {
        std::lock_guard lock(m_mutex);
        if (!m_broken) {
            spdlog::error("nbd client: {}: the connection is lost, every request to it now fails: {}", m_peer, why.to_string());
            m_broken = why.with_prefix(m_peer);
        }
    }
    m_transport->disconnect();
}

void NbdClientDevice::read_replies()
{
    ReplyReader replies(m_reader, m_info.structured_replies);
    auto lookup = [this](u64 cookie) -> PendingReply* {
        std::lock_guard lock(m_mutex);
        auto found = m_pending.find(cookie);
        return found == m_pending.end() ? nullptr : &found->second->reply;
    };
    Error why = Error::from_string("the server closed the connection", ErrorKind::Disconnected);
    for (;;) {
        auto next = replies.next(lookup);
        if (!next) {
            why = next.error();
            break;
        }
        if (!*next)
            break;
        if (**next == 0)
            continue;
        std::lock_guard lock(m_mutex);
        m_pending.erase(**next);
        m_completed.notify_all();
    }
    break_connection(why);
    std::lock_guard lock(m_mutex);
    for (auto& [cookie, slot] : m_pending)
        slot->reply.outcome = tl::unexpected(*m_broken);
    m_pending.clear();
    m_reader_done = true;
    m_completed.notify_all();
}

void NbdClientDevice::submit(Slot& slot, u16 type, u16 flags, u64 offset, u32 length, std::span<u8> read_into, std::span<u8 const> payload)
{
    slot.reply.type = type;
    slot.reply.offset = offset;
    slot.reply.length = length;
    slot.reply.data = read_into;
    std::lock_guard send(m_send_mutex);
    {
        std::lock_guard lock(m_mutex);
        if (m_broken) {
            slot.send_error = *m_broken;
            return;
        }
        slot.cookie = m_next_cookie++;
        m_pending.emplace(slot.cookie, &slot);
    }
    u8 header[REQUEST_SIZE];
    encode_request({ .magic = NBD_REQUEST_MAGIC, .flags = flags, .type = type, .cookie = slot.cookie, .offset = offset, .length = length }, header);
    iovec vectors[2] { { header, sizeof(header) }, { const_cast<u8*>(payload.data()), payload.size() } };
    if (auto sent = m_transport->write_all({ vectors, payload.empty() ? 1u : 2u }); !sent)
        break_connection(sent.error().with_prefix(fmt::format("sending {}", command_name(type))));
}

ErrorOr<void> NbdClientDevice::wait(Slot& slot)
{
    if (slot.send_error)
        return tl::unexpected(*slot.send_error);
    std::unique_lock lock(m_mutex);
    auto complete = [&] { return slot.reply.outcome.has_value(); };
    if (!m_completed.wait_for(lock, m_options.timeout, complete)) {
        lock.unlock();
        break_connection(Error::from_string(fmt::format("no reply to {} within {} ms", command_name(slot.reply.type), m_options.timeout.count()),
            ErrorKind::TimedOut));
        lock.lock();
        // The reader fails every request in flight as it exits, which the disconnect makes it do.
        m_completed.wait(lock, complete);
    }
    return *slot.reply.outcome;
}

ErrorOr<void> NbdClientDevice::check_range(u64 offset, u64 length, bool write) const
{
    if (write && read_only())
        return make_error(ErrorKind::PermissionDenied, fmt::format("{}: the server exports this disk read-only", m_peer));
    if (offset > m_info.size || length > m_info.size - offset)
        return make_error(fmt::format("{}: {} bytes at offset {} lie past the end of the {}-byte export", m_peer, length, offset, m_info.size));
    return {};
}

ErrorOr<void> NbdClientDevice::run_one(u16 type, u16 flags, u64 offset, u32 length, std::span<u8> read_into, std::span<u8 const> payload)
{
    Slot slot;
    submit(slot, type, flags, offset, length, read_into, payload);
    return wait(slot);
}

ErrorOr<void> NbdClientDevice::read(u64 offset, std::span<u8> buffer)
{
    BlockTransfer transfer { .write = false, .offset = offset, .buffer = buffer, .fua = false, .error = {} };
    transfer_batch({ &transfer, 1 });
    if (transfer.error)
        return tl::unexpected(*transfer.error);
    return {};
}

ErrorOr<void> NbdClientDevice::write(u64 offset, std::span<u8 const> data, bool fua)
{
    BlockTransfer transfer { .write = true, .offset = offset, .buffer = { const_cast<u8*>(data.data()), data.size() }, .fua = fua, .error = {} };
    transfer_batch({ &transfer, 1 });
    if (transfer.error)
        return tl::unexpected(*transfer.error);
    return {};
}

void NbdClientDevice::transfer_batch(std::span<BlockTransfer> transfers)
{
    // Every piece of every transfer goes out before the first wait, so the server sees the whole
    // batch at once. The slots' vector is sized once and never grows (m_pending holds their addresses).
    u64 const piece = m_info.maximum_block;
    size_t count = 0;
    for (auto& transfer : transfers) {
        transfer.error.reset();
        if (auto valid = check_range(transfer.offset, transfer.buffer.size(), transfer.write); !valid)
            transfer.error = valid.error();
        else
            count += (transfer.buffer.size() + piece - 1) / piece;
    }
    std::vector<Slot> slots(count);
    size_t next = 0;
    bool need_flush = false;
    for (auto& transfer : transfers) {
        if (transfer.error)
            continue;
        u16 flags = 0;
        if (transfer.write && transfer.fua) {
            if (has(NBD_FLAG_SEND_FUA))
                flags = NBD_CMD_FLAG_FUA;
            else
                need_flush = true;
        }
        for (u64 done = 0; done < transfer.buffer.size(); done += piece) {
            auto part = transfer.buffer.subspan(done, std::min<u64>(piece, transfer.buffer.size() - done));
            u32 length = static_cast<u32>(part.size());
            if (transfer.write)
                submit(slots[next++], NBD_CMD_WRITE, flags, transfer.offset + done, length, {}, part);
            else
                submit(slots[next++], NBD_CMD_READ, 0, transfer.offset + done, length, part, {});
        }
    }
    next = 0;
    for (auto& transfer : transfers) {
        if (transfer.error)
            continue;
        for (u64 done = 0; done < transfer.buffer.size(); done += piece) {
            auto outcome = wait(slots[next++]);
            if (!outcome && !transfer.error)
                transfer.error = outcome.error();
        }
    }
    if (need_flush) {
        auto flushed = flush();
        for (auto& transfer : transfers) {
            if (!flushed && transfer.write && transfer.fua && !transfer.error)
                transfer.error = flushed.error();
        }
    }
}

ErrorOr<void> NbdClientDevice::flush()
{
    // A server that offers no flush writes through (or keeps no promise a flush could add).
    if (!has(NBD_FLAG_SEND_FLUSH) || read_only())
        return {};
    return run_one(NBD_CMD_FLUSH, 0, 0, 0);
}

ErrorOr<void> NbdClientDevice::run_split(u16 type, u16 flags, u64 offset, u64 length, u64 piece)
{
    for (u64 done = 0; done < length; done += piece)
        TRY(run_one(type, flags, offset + done, static_cast<u32>(std::min(piece, length - done))));
    return {};
}

ErrorOr<void> NbdClientDevice::write_zero_data(u64 offset, u64 length, bool fua)
{
    u64 const piece = std::min<u64>(m_info.maximum_block, 1 * MiB);
    std::vector<u8> zeroes(std::min(piece, length));
    for (u64 done = 0; done < length; done += piece)
        TRY(write(offset + done, std::span<u8 const>(zeroes).first(std::min(piece, length - done)), fua));
    return {};
}

ErrorOr<void> NbdClientDevice::discard(u64 offset, u64 length)
{
    TRY(check_range(offset, length, true));
    // Discarded ranges must read back as zeroes (BlockDevice), which NBD_CMD_TRIM does not promise:
    // zero them, allowing the server to unmap.
    return write_zeroes(offset, length, true);
}

ErrorOr<void> NbdClientDevice::write_zeroes(u64 offset, u64 length, bool may_unmap)
{
    TRY(check_range(offset, length, true));
    if (!has(NBD_FLAG_SEND_WRITE_ZEROES))
        return write_zero_data(offset, length, false);
    u64 const align = std::max<u32>(m_info.minimum_block, 512);
    return run_split(NBD_CMD_WRITE_ZEROES, may_unmap ? 0 : NBD_CMD_FLAG_NO_HOLE, offset, length, MAX_RANGE_REQUEST / align * align);
}

ErrorOr<std::vector<Extent>> NbdClientDevice::block_status(u64 offset, u64 length)
{
    TRY(check_range(offset, length, false));
    return std::vector<Extent> { { .offset = offset, .length = length, .allocated = true, .zero = false } };
}

} // namespace kasou::storage::nbd
