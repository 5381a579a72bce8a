#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "storage/nbd/export.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// What the handshake settled for one connection.
struct Session {
    Export const* export_entry { nullptr };
    bool structured_replies { false };
    bool base_allocation { false }; // NBD_OPT_SET_META_CONTEXT selected base:allocation
};

// The largest READ or WRITE length the server ever accepts (the maximum block size advertised in
// NBD_INFO_BLOCK_SIZE, unless the memory budget is smaller; see max_payload_for).
constexpr u32 MAX_PAYLOAD = 32 * 1024 * 1024;
// Option payloads above this close the connection (the longest meaningful one, a meta-context
// request with a few 4096-byte queries, stays far below).
constexpr u32 MAX_OPTION_PAYLOAD = 64 * 1024;
// Options one connection may send before it must pick an export.
constexpr u32 MAX_OPTIONS = 1024;

// The server side of the fixed-newstyle handshake ("Handshake" and "Option haggling") as a state
// machine that does no I/O, so that it runs as well on an event loop as on a blocking thread:
// output() holds what to send (first the greeting), wanted() says exactly how many bytes of input
// the next step needs (the client flags, an option header, an option's payload), feed() takes them.
// Options are answered until NBD_OPT_GO or NBD_OPT_EXPORT_NAME picks an export (state Done, with
// session()) or the client sends NBD_OPT_ABORT (Ended). NBD_OPT_LIST, INFO, STRUCTURED_REPLY,
// LIST_META_CONTEXT and SET_META_CONTEXT are answered; any other option gets NBD_REP_ERR_UNSUP.
// feed() fails when the stream is malformed (the caller then closes the connection). Never reading
// more than wanted() leaves the first request, if the client pipelined it, for the transmission.
class Negotiation {
public:
    enum class State { Reading, Done, Ended };

    // `max_payload` is the maximum block size advertised.
    Negotiation(std::span<Export const> exports, u32 max_payload);

    State state() const { return m_state; }
    size_t wanted() const;
    // Takes exactly wanted() bytes.
    ErrorOr<void> feed(std::span<u8 const> bytes);
    // The bytes to send so far (cleared by taking them).
    std::vector<u8> take_output();
    // True between an option header and its payload.
    bool in_option() const { return m_header.has_value(); }
    Session const& session() const { return m_session; }

private:
    ErrorOr<void> handle_option(u32 option, std::span<u8 const> payload);
    ErrorOr<void> reply(u32 option, u32 type, std::span<u8 const> data = {});
    ErrorOr<void> reply_error(u32 option, u32 type, std::string_view message)
    {
        return reply(option, type, { reinterpret_cast<u8 const*>(message.data()), message.size() });
    }
    // Each returns true when the handshake is over with an export picked.
    ErrorOr<bool> handle_info_or_go(u32 option, std::span<u8 const> payload);
    ErrorOr<void> handle_list(std::span<u8 const> payload);
    ErrorOr<void> handle_meta_context(u32 option, std::span<u8 const> payload);
    ErrorOr<void> handle_export_name(std::span<u8 const> payload);

    std::span<Export const> m_exports;
    u32 m_max_payload;
    State m_state { State::Reading };
    bool m_have_flags { false };
    bool m_no_zeroes { false };
    u32 m_options { 0 };
    std::optional<std::pair<u32, u32>> m_header; // option and payload length, read but not yet handled
    std::vector<u8> m_output;
    Session m_session;
    std::string m_meta_export; // the export the base:allocation context was set for
};

// Runs a Negotiation to its end over a blocking transport. Returns nullopt when the client ends
// the handshake (NBD_OPT_ABORT or closing), an error when the stream is malformed.
ErrorOr<std::optional<Session>> negotiate(BufferedReader& reader, Transport& transport, std::span<Export const> exports, u32 max_payload);

// The transmission flags an export is offered with.
u16 transmission_flags(Export const& entry, bool structured_replies);

} // namespace kasou::storage::nbd
