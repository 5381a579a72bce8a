#pragma once

#include <string>

#include "base/error.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// What a server told the client about the export it picked, every field already checked.
struct ExportInfo {
    u64 size { 0 };
    u16 flags { 0 };           // transmission flags; NBD_FLAG_HAS_FLAGS is set, or all are 0
    u32 minimum_block { 1 };   // "Block size constraints": a power of two up to 64 KiB
    u32 preferred_block { 4096 };
    u32 maximum_block { 0 };   // largest READ or WRITE payload; a multiple of minimum_block
    bool structured_replies { false };
};

// The client side of the fixed-newstyle handshake: reads the greeting, sends the client flags,
// asks for structured replies, then NBD_OPT_GO for `export_name` with NBD_INFO_BLOCK_SIZE
// requested. Everything the server sends is untrusted: a wrong magic, an oversized or malformed
// option reply, an unknown reply type or a size past 2^63 is an error naming it; a server's error
// reply is an error carrying its (sanitized) message. The transport's own timeouts bound the wait.
ErrorOr<ExportInfo> client_handshake(BufferedReader& reader, Transport& transport, std::string const& export_name);

// `text` with every byte outside printable ASCII replaced by '?', cut to 200 characters, so that
// a message from a server can go into a log line.
std::string printable(std::string_view text);

} // namespace kasou::storage::nbd
