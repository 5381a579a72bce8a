#include "storage/nbd/protocol.h"

#include <cerrno>

#include <fmt/format.h>

namespace kasou::storage::nbd {

Request decode_request(std::span<u8 const, REQUEST_SIZE> header)
{
    u8 const* p = header.data();
    return Request {
        .magic = load_be32(p),
        .flags = load_be16(p + 4),
        .type = load_be16(p + 6),
        .cookie = load_be64(p + 8),
        .offset = load_be64(p + 16),
        .length = load_be32(p + 24),
    };
}

void encode_request(Request const& request, std::span<u8, REQUEST_SIZE> header)
{
    u8* p = header.data();
    store_be32(p, NBD_REQUEST_MAGIC);
    store_be16(p + 4, request.flags);
    store_be16(p + 6, request.type);
    store_be64(p + 8, request.cookie);
    store_be64(p + 16, request.offset);
    store_be32(p + 24, request.length);
}

std::string command_name(u16 type)
{
    switch (type) {
    case NBD_CMD_READ: return "NBD_CMD_READ";
    case NBD_CMD_WRITE: return "NBD_CMD_WRITE";
    case NBD_CMD_DISC: return "NBD_CMD_DISC";
    case NBD_CMD_FLUSH: return "NBD_CMD_FLUSH";
    case NBD_CMD_TRIM: return "NBD_CMD_TRIM";
    case NBD_CMD_CACHE: return "NBD_CMD_CACHE";
    case NBD_CMD_WRITE_ZEROES: return "NBD_CMD_WRITE_ZEROES";
    case NBD_CMD_BLOCK_STATUS: return "NBD_CMD_BLOCK_STATUS";
    case NBD_CMD_RESIZE: return "NBD_CMD_RESIZE";
    default: return fmt::format("command {}", type);
    }
}

u32 nbd_error_for(Error const& error)
{
    switch (error.code()) {
    case EPERM:
    case EROFS:
    case EACCES:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

int errno_for_nbd_error(u32 error)
{
    // "Error values": the values are Linux's errno numbers, but only these are defined.
    switch (error) {
    case NBD_EPERM: return EPERM;
    case NBD_ENOMEM: return ENOMEM;
    case NBD_EINVAL: return EINVAL;
    case NBD_ENOSPC: return ENOSPC;
    case NBD_EOVERFLOW: return EOVERFLOW;
    case NBD_ENOTSUP: return ENOTSUP;
    case NBD_ESHUTDOWN: return ESHUTDOWN;
    default: return EIO;
    }
}

} // namespace kasou::storage::nbd
