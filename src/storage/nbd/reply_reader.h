#pragma once

#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// A request the client has sent and waits for, as the reply reader needs it. The reader fills
// `data` (READ only) and, once the reply is complete, sets `outcome`.
struct PendingReply {
    u16 type { 0 };
    u64 offset { 0 };
    u32 length { 0 };
    std::span<u8> data; // READ: exactly `length` bytes to read into
    // Structured replies: the byte ranges of the read filled so far (offset within the request,
    // length), and the first error chunk.
    std::vector<std::pair<u32, u32>> filled;
    std::optional<Error> error;
    // Set when the reply is complete: success, or the error the server reported.
    std::optional<ErrorOr<void>> outcome;
};

// Reads the replies of the transmission phase (simple replies, and structured reply chunks when
// they were negotiated) and matches each to its request by cookie.
//
// The server is not trusted: a cookie that matches no request, a wrong magic, a chunk type the
// request cannot have, a data chunk outside the request or longer than its header says, a read
// reply that leaves bytes unfilled, an oversized error message — each is a protocol violation,
// returned as an error after which the connection cannot be used (the caller fails every request
// in flight). An error the server reports for one request (an NBD error value) is that request's
// outcome, mapped to an errno value and carrying the server's message, and the connection goes on.
// Data is only ever written inside the request's own buffer.
class ReplyReader {
public:
    using Lookup = std::function<PendingReply*(u64 cookie)>;

    ReplyReader(BufferedReader& reader, bool structured_replies)
        : m_reader(reader)
        , m_structured(structured_replies)
    {
    }

    // Reads one simple reply or one chunk. Returns the cookie of a request whose reply is now
    // complete (its outcome is set; the caller removes it), 0 when the message completed nothing
    // (a chunk without the DONE flag), nullopt when the stream ended cleanly between messages.
    ErrorOr<std::optional<u64>> next(Lookup const& lookup);

private:
    ErrorOr<void> read(std::span<u8> out);
    ErrorOr<void> read_simple(u8 const* header, PendingReply& request);
    ErrorOr<bool> read_chunk(u8 const* header, PendingReply& request);
    static void finish(PendingReply& request);

    BufferedReader& m_reader;
    bool m_structured;
};

} // namespace kasou::storage::nbd
