#include "storage/nbd/reply_reader.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/nbd/client_handshake.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

namespace {

// The longest error message a server may send ("MUST NOT be longer than 4096 bytes").
constexpr u32 MAX_ERROR_MESSAGE = MAX_STRING;

Error server_error(PendingReply const& request, u32 nbd_error, std::string_view message)
{
    std::string context = fmt::format("the NBD server failed {} of {} bytes at offset {} with error {}", command_name(request.type),
        request.length, request.offset, nbd_error);
    if (!message.empty())
        context += fmt::format(" ({})", printable(message));
    return Error::from_errno(errno_for_nbd_error(nbd_error), context);
}

} // namespace

ErrorOr<void> ReplyReader::read(std::span<u8> out)
{
    if (!TRY(m_reader.read_exact(out)))
        return make_error(ErrorKind::Disconnected, "the server closed the connection in the middle of a reply");
    return {};
}

void ReplyReader::finish(PendingReply& request)
{
    if (request.error)
        request.outcome = tl::unexpected(*request.error);
    else
        request.outcome = ErrorOr<void> {};
}

ErrorOr<std::optional<u64>> ReplyReader::next(Lookup const& lookup)
{
    u8 header[STRUCTURED_REPLY_SIZE];
    // Both kinds of reply start with a magic and the cookie at the same place; the first 16
    // bytes are common.
    if (!TRY(m_reader.read_exact({ header, SIMPLE_REPLY_SIZE })))
        return std::optional<u64> {};
    u32 magic = load_be32(header);
    u64 cookie = load_be64(header + 8);
    if (magic == NBD_SIMPLE_REPLY_MAGIC) {
        PendingReply* request = lookup(cookie);
        if (!request)
            return make_error(fmt::format("a reply for cookie {:#x}, which matches no request in flight", cookie));
        if (!request->filled.empty() || request->error)
            return make_error(fmt::format("a simple reply for cookie {:#x} after structured chunks", cookie));
        TRY(read_simple(header, *request));
        return std::optional<u64> { cookie };
    }
    if (magic == NBD_STRUCTURED_REPLY_MAGIC && m_structured) {
        TRY(read({ header + SIMPLE_REPLY_SIZE, STRUCTURED_REPLY_SIZE - SIMPLE_REPLY_SIZE }));
        PendingReply* request = lookup(cookie);
        if (!request)
            return make_error(fmt::format("a reply chunk for cookie {:#x}, which matches no request in flight", cookie));
        bool done = TRY(read_chunk(header, *request));
        return std::optional<u64> { done ? cookie : 0 };
    }
    return make_error(fmt::format("bad reply magic {:#010x}", magic));
}

ErrorOr<void> ReplyReader::read_simple(u8 const* header, PendingReply& request)
{
    u32 error = load_be32(header + 4);
    if (error != 0) {
        request.outcome = tl::unexpected(server_error(request, error, {}));
        return {};
    }
    if (request.type == NBD_CMD_READ)
        TRY(read(request.data));
    request.outcome = ErrorOr<void> {};
    return {};
}

ErrorOr<bool> ReplyReader::read_chunk(u8 const* header, PendingReply& request)
{
    u16 flags = load_be16(header + 4);
    u16 type = load_be16(header + 6);
    u32 length = load_be32(header + 16);
    bool const done = flags & NBD_REPLY_FLAG_DONE;
    auto violation = [&](std::string_view why) -> ErrorOr<bool> {
        return make_error(fmt::format("reply chunk type {} of {} bytes for {}: {}", type, length, command_name(request.type), why));
    };

    if (type == NBD_REPLY_TYPE_NONE) {
        if (length != 0 || !done)
            return violation("NBD_REPLY_TYPE_NONE must be empty and final");
    } else if (type == NBD_REPLY_TYPE_OFFSET_DATA || type == NBD_REPLY_TYPE_OFFSET_HOLE) {
        if (request.type != NBD_CMD_READ)
            return violation("data for a request that reads nothing");
        if (length < 8 || (type == NBD_REPLY_TYPE_OFFSET_HOLE && length != 12))
            return violation("wrong length");
        u8 field[8];
        TRY(read(field));
        u64 offset = load_be64(field);
        u32 count = length - 8;
        if (type == NBD_REPLY_TYPE_OFFSET_HOLE) {
            u8 size[4];
            TRY(read(size));
            count = load_be32(size);
        }
        if (count == 0 || offset < request.offset || offset - request.offset > request.length || count > request.length - (offset - request.offset))
            return violation(fmt::format("{} bytes at offset {} lie outside the request", count, offset));
        auto target = request.data.subspan(offset - request.offset, count);
        if (type == NBD_REPLY_TYPE_OFFSET_DATA)
            TRY(read(target));
        else
            std::memset(target.data(), 0, target.size());
        request.filled.emplace_back(static_cast<u32>(offset - request.offset), count);
    } else if (type & (1u << 15)) {
        // Error chunks: error value, message length, message, and for ERROR_OFFSET the offset.
        u32 extra = type == NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0;
        if (length < 6 || length > 6 + MAX_ERROR_MESSAGE + 8)
            return violation("wrong length for an error chunk");
        u8 fields[6];
        TRY(read(fields));
        u32 error = load_be32(fields);
        u16 message_length = load_be16(fields + 4);
        bool known = type == NBD_REPLY_TYPE_ERROR || type == NBD_REPLY_TYPE_ERROR_OFFSET;
        if (known && length != 6u + message_length + extra)
            return violation("the message length does not match the chunk length");
        if (error == 0)
            return violation("an error chunk with error value 0");
        std::string message(length - 6, '\0');
        TRY(read({ reinterpret_cast<u8*>(message.data()), message.size() }));
        message.resize(std::min<size_t>(message_length, message.size()));
        if (!request.error)
            request.error = server_error(request, error, message);
    } else {
        return violation("unknown chunk type");
    }
    if (!done)
        return false;
    if (request.type == NBD_CMD_READ && !request.error) {
        // Every byte of a successful read must have come exactly once.
        auto& filled = request.filled;
        std::sort(filled.begin(), filled.end());
        u64 covered = 0;
        for (auto const& [start, count] : filled) {
            if (start != covered)
                return violation(fmt::format("the read reply leaves or overlaps bytes at offset {}", request.offset + std::min<u64>(start, covered)));
            covered += count;
        }
        if (covered != request.length)
            return violation(fmt::format("the read reply ends {} bytes short", request.length - covered));
    }
    finish(request);
    return true;
}

} // namespace kasou::storage::nbd
