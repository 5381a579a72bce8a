#include "storage/nbd/request_parser.h"

#include <algorithm>

#include <fmt/format.h>

#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

namespace {

RequestCheck reject(u32 error, u32 payload_length, std::string reason)
{
    return { .verdict = RequestCheck::Verdict::Reject, .error = error, .payload_length = payload_length, .reason = std::move(reason) };
}

RequestCheck disconnect(std::string reason)
{
    return { .verdict = RequestCheck::Verdict::Disconnect, .error = 0, .payload_length = 0, .reason = std::move(reason) };
}

// Flags each command may carry; anything else is rejected with EINVAL.
u16 allowed_flags(u16 type)
{
    switch (type) {
    case NBD_CMD_READ: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
    case NBD_CMD_WRITE: return NBD_CMD_FLAG_FUA;
    case NBD_CMD_TRIM: return NBD_CMD_FLAG_FUA;
    case NBD_CMD_WRITE_ZEROES: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
    case NBD_CMD_BLOCK_STATUS: return NBD_CMD_FLAG_REQ_ONE;
    default: return 0;
    }
}

} // namespace

RequestCheck check_request(Request const& request, RequestLimits const& limits)
{
    if (request.magic != NBD_REQUEST_MAGIC)
        return disconnect(fmt::format("bad request magic {:#010x}", request.magic));

    auto const name = command_name(request.type);
    switch (request.type) {
    case NBD_CMD_READ:
    case NBD_CMD_WRITE:
    case NBD_CMD_DISC:
    case NBD_CMD_FLUSH:
    case NBD_CMD_TRIM:
    case NBD_CMD_WRITE_ZEROES:
    case NBD_CMD_BLOCK_STATUS:
        break;
    case NBD_CMD_CACHE:
    case NBD_CMD_RESIZE:
        // Known and payload-free, but not advertised by this server.
        return reject(NBD_EINVAL, 0, fmt::format("{} is not supported", name));
    default:
        return disconnect(fmt::format("unknown command type {}", request.type));
    }

    bool const is_write = request.type == NBD_CMD_WRITE;
    u32 const payload = is_write ? request.length : 0;
    if (is_write && request.length > std::max(limits.max_payload, limits.max_skipped_payload))
        return disconnect(fmt::format("NBD_CMD_WRITE of {} bytes exceeds the {}-byte limit", request.length, limits.max_payload));

    if ((request.flags & ~allowed_flags(request.type)) != 0)
        return reject(NBD_EINVAL, payload, fmt::format("{} with unsupported flags {:#x}", name, request.flags));
    if (request.type == NBD_CMD_DISC || request.type == NBD_CMD_FLUSH)
        return { .verdict = RequestCheck::Verdict::Execute, .error = 0, .payload_length = 0, .reason = {} };

    if (request.type == NBD_CMD_BLOCK_STATUS && !(limits.structured_replies && limits.base_allocation))
        return reject(NBD_EINVAL, 0, "NBD_CMD_BLOCK_STATUS without a negotiated base:allocation context");
    if ((request.type == NBD_CMD_READ || is_write) && request.length > limits.max_payload)
        return reject(NBD_EINVAL, payload, fmt::format("{} of {} bytes exceeds the {}-byte limit", name, request.length, limits.max_payload));
    if (request.length == 0)
        return reject(NBD_EINVAL, payload, fmt::format("{} of length 0", name));
    // Written so that offset + length cannot overflow.
    if (request.offset > limits.export_size || request.length > limits.export_size - request.offset) {
        bool const writes = is_write || request.type == NBD_CMD_WRITE_ZEROES;
        return reject(writes ? NBD_ENOSPC : NBD_EINVAL, payload,
            fmt::format("{} of {} bytes at offset {} lies beyond the end of the export ({} bytes)", name, request.length, request.offset, limits.export_size));
    }
    bool const modifies = is_write || request.type == NBD_CMD_TRIM || request.type == NBD_CMD_WRITE_ZEROES;
    if (modifies && limits.read_only)
        return reject(NBD_EPERM, payload, fmt::format("{} on a read-only export", name));
    return { .verdict = RequestCheck::Verdict::Execute, .error = 0, .payload_length = payload, .reason = {} };
}

} // namespace kasou::storage::nbd
