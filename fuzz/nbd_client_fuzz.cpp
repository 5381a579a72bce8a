// libFuzzer target: the input is everything a server sends on one NBD connection to kasou's
// client — the handshake, then replies (simple and structured chunks) to four requests in flight.
// The client must reject what is malformed with an error, and write only inside the buffers of
// the requests it sent.

#include <array>
#include <vector>

#include <spdlog/spdlog.h>

#include "input_transport.h"
#include "storage/nbd/client_handshake.h"
#include "storage/nbd/protocol.h"
#include "storage/nbd/reply_reader.h"

using namespace kasou;
using namespace kasou::storage;

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    nbd::InputTransport transport({ data, size });
    nbd::BufferedReader reader(transport);
    auto info = nbd::client_handshake(reader, transport, "disk");
    if (!info)
        return 0;
    // Each read's buffer is its own allocation, so ASan catches a write past it.
    std::vector<u8> small(4096);
    std::vector<u8> large(65536);
    std::array<nbd::PendingReply, 4> requests;
    requests[0] = { .type = nbd::NBD_CMD_READ, .offset = 0, .length = 4096, .data = small, .filled = {}, .error = {}, .outcome = {} };
    requests[1] = { .type = nbd::NBD_CMD_WRITE, .offset = 4096, .length = 4096, .data = {}, .filled = {}, .error = {}, .outcome = {} };
    requests[2] = { .type = nbd::NBD_CMD_READ, .offset = 8192, .length = 65536, .data = large, .filled = {}, .error = {}, .outcome = {} };
    requests[3] = { .type = nbd::NBD_CMD_FLUSH, .offset = 0, .length = 0, .data = {}, .filled = {}, .error = {}, .outcome = {} };
    nbd::ReplyReader replies(reader, info->structured_replies);
    auto lookup = [&](u64 cookie) -> nbd::PendingReply* {
        if (cookie < 1 || cookie > requests.size() || requests[cookie - 1].outcome)
            return nullptr;
        return &requests[cookie - 1];
    };
    for (;;) {
        auto next = replies.next(lookup);
        if (!next || !*next)
            break;
    }
    return 0;
}
