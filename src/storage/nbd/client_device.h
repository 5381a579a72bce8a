#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "storage/block_device.h"
#include "storage/nbd/client_handshake.h"
#include "storage/nbd/reply_reader.h"
#include "storage/nbd/transport.h"
#include "storage/nbd/uri.h"

namespace kasou::storage::nbd {

// How long the client waits for a server before it gives the connection up.
struct ClientOptions {
    // Connecting and the handshake, a reply to a request in flight, a send the server does not
    // take in: each waits at most this long.
    std::chrono::milliseconds timeout { 30'000 };
};

// A BlockDevice backed by one export of an NBD server (`kasou run --disk nbd:URI`), over one
// connection that carries many requests at once.
//
// Requests: a caller (any thread) registers its request under a fresh cookie, sends it under
// m_send_mutex, and waits on m_completed until the reader thread has matched the reply to the
// cookie and set the outcome. transfer_batch() sends a whole batch before it waits, so a virtio-blk
// queue keeps its whole depth in flight. Requests longer than the server's maximum block size are
// split. Commands the server did not advertise are emulated (FUA by a flush, trim and write-zeroes
// by writing zeroes) or, for flush, skipped; writes to an export the server marks read-only fail
// without being sent.
//
// Failure: the server is untrusted (see ReplyReader). A protocol violation, the server closing the
// connection, or no reply within the timeout ends the connection: it is logged once, every request
// in flight and every later one fails with an error (the guest sees an I/O error), nothing blocks
// for longer than the timeout. There is no reconnection.
//
// Invariants: m_pending holds exactly the requests sent and not yet completed; only the reader
// thread writes into a pending request's buffer or outcome, and it has stopped doing so once
// m_broken is set (it sets it itself, under m_mutex, as it exits). Lock order: m_send_mutex, then m_mutex.
class NbdClientDevice final : public BlockDevice {
public:
    // Connects to `uri`, negotiates and starts the reader thread.
    static ErrorOr<std::shared_ptr<NbdClientDevice>> connect(NbdUri const& uri, ClientOptions const& options = {});
    // Sends NBD_CMD_DISC, closes the connection and joins the reader thread.
    ~NbdClientDevice() override;
    NbdClientDevice(NbdClientDevice const&) = delete;
    NbdClientDevice& operator=(NbdClientDevice const&) = delete;

    u64 size() const override { return m_info.size; }
    bool read_only() const override;
    u32 logical_block_size() const override;
    ExportInfo const& info() const { return m_info; }

    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override;
    ErrorOr<void> write(u64 offset, std::span<u8 const> data, bool fua) override;
    ErrorOr<void> flush() override;
    ErrorOr<void> discard(u64 offset, u64 length) override;
    ErrorOr<void> write_zeroes(u64 offset, u64 length, bool may_unmap) override;
    // One allocated extent over the whole range (the client asks for no metadata context).
    ErrorOr<std::vector<Extent>> block_status(u64 offset, u64 length) override;
    void transfer_batch(std::span<BlockTransfer> transfers) override;

private:
    // One request on the wire; lives on the stack of the thread waiting for it.
    struct Slot {
        PendingReply reply;
        u64 cookie { 0 };
        std::optional<Error> send_error; // the request never reached the server
    };

    NbdClientDevice(std::unique_ptr<SocketTransport> transport, ExportInfo info, std::string peer, ClientOptions const& options);
    ErrorOr<void> check_range(u64 offset, u64 length, bool write) const;
    // Registers and sends one request (payload: a write's data).
    void submit(Slot& slot, u16 type, u16 flags, u64 offset, u32 length, std::span<u8> read_into, std::span<u8 const> payload);
    // Waits for a submitted request; its outcome.
    ErrorOr<void> wait(Slot& slot);
    ErrorOr<void> run_one(u16 type, u16 flags, u64 offset, u32 length, std::span<u8> read_into = {}, std::span<u8 const> payload = {});
    // Splits [offset, offset + length) into requests of at most `piece` bytes.
    ErrorOr<void> run_split(u16 type, u16 flags, u64 offset, u64 length, u64 piece);
    ErrorOr<void> write_zero_data(u64 offset, u64 length, bool fua);
    void read_replies();
    // Marks the connection broken (first reason wins, logged once) and wakes every waiter.
    void break_connection(Error const& why);
    bool has(u16 flag) const { return m_info.flags & flag; }

    std::unique_ptr<SocketTransport> m_transport;
    BufferedReader m_reader;
    ExportInfo m_info;
    std::string m_peer;
    ClientOptions m_options;

    std::mutex m_send_mutex;
    std::mutex m_mutex;
    std::condition_variable m_completed;
    std::unordered_map<u64, Slot*> m_pending; // guarded by m_mutex
    u64 m_next_cookie { 1 };                  // guarded by m_mutex
    std::optional<Error> m_broken;            // guarded by m_mutex
    bool m_reader_done { false };             // guarded by m_mutex
    std::thread m_reader_thread;
};

} // namespace kasou::storage::nbd
