#pragma once

#include <optional>
#include <span>
#include <string>

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

// The server side of the fixed-newstyle handshake ("Handshake" and "Option haggling"): greeting,
// client flags, then options until NBD_OPT_GO or NBD_OPT_EXPORT_NAME picks an export. Answers
// NBD_OPT_LIST, INFO, STRUCTURED_REPLY, LIST_META_CONTEXT and SET_META_CONTEXT; any other option
// gets NBD_REP_ERR_UNSUP. Returns nullopt when the client ends the handshake (NBD_OPT_ABORT or
// closing), an error when the stream is malformed (the caller then closes the connection).
// `max_payload` is the maximum block size advertised.
ErrorOr<std::optional<Session>> negotiate(BufferedReader& reader, Transport& transport, std::span<Export const> exports, u32 max_payload);

// The transmission flags an export is offered with.
u16 transmission_flags(Export const& entry, bool structured_replies);

} // namespace kasou::storage::nbd
