#pragma once

// Constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), the big-endian encoding
// every field on the wire uses, and the messages both kasou's server and its client read or write.
// Section names refer to that document.

#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage::nbd {

// "Handshake": the server's greeting and the option haggling magics.
constexpr u64 NBD_MAGIC = 0x4e42444d41474943;         // "NBDMAGIC"
constexpr u64 NBD_IHAVEOPT = 0x49484156454F5054;      // "IHAVEOPT"
constexpr u64 NBD_OPTION_REPLY_MAGIC = 0x3e889045565a9;

// "Handshake flags" (server) and "Client flags".
constexpr u16 NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
constexpr u16 NBD_FLAG_NO_ZEROES = 1 << 1;
constexpr u32 NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
constexpr u32 NBD_FLAG_C_NO_ZEROES = 1 << 1;

// "Transmission flags".
constexpr u16 NBD_FLAG_HAS_FLAGS = 1 << 0;
constexpr u16 NBD_FLAG_READ_ONLY = 1 << 1;
constexpr u16 NBD_FLAG_SEND_FLUSH = 1 << 2;
constexpr u16 NBD_FLAG_SEND_FUA = 1 << 3;
constexpr u16 NBD_FLAG_SEND_TRIM = 1 << 5;
constexpr u16 NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
constexpr u16 NBD_FLAG_SEND_DF = 1 << 7;
constexpr u16 NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

// "Option types".
constexpr u32 NBD_OPT_EXPORT_NAME = 1;
constexpr u32 NBD_OPT_ABORT = 2;
constexpr u32 NBD_OPT_LIST = 3;
constexpr u32 NBD_OPT_STARTTLS = 5;
constexpr u32 NBD_OPT_INFO = 6;
constexpr u32 NBD_OPT_GO = 7;
constexpr u32 NBD_OPT_STRUCTURED_REPLY = 8;
constexpr u32 NBD_OPT_LIST_META_CONTEXT = 9;
constexpr u32 NBD_OPT_SET_META_CONTEXT = 10;

// "Option reply types"; errors have bit 31 set.
constexpr u32 NBD_REP_ACK = 1;
constexpr u32 NBD_REP_SERVER = 2;
constexpr u32 NBD_REP_INFO = 3;
constexpr u32 NBD_REP_META_CONTEXT = 4;
constexpr u32 NBD_REP_ERR_UNSUP = (1u << 31) + 1;
constexpr u32 NBD_REP_ERR_POLICY = (1u << 31) + 2;
constexpr u32 NBD_REP_ERR_INVALID = (1u << 31) + 3;
constexpr u32 NBD_REP_ERR_UNKNOWN = (1u << 31) + 6;
constexpr u32 NBD_REP_ERR_TOO_BIG = (1u << 31) + 9;

// "Information types" of NBD_REP_INFO.
constexpr u16 NBD_INFO_EXPORT = 0;
constexpr u16 NBD_INFO_NAME = 1;
constexpr u16 NBD_INFO_DESCRIPTION = 2;
constexpr u16 NBD_INFO_BLOCK_SIZE = 3;

// "Transmission phase": request and reply magics.
constexpr u32 NBD_REQUEST_MAGIC = 0x25609513;
constexpr u32 NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
constexpr u32 NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// "Request types".
constexpr u16 NBD_CMD_READ = 0;
constexpr u16 NBD_CMD_WRITE = 1;
constexpr u16 NBD_CMD_DISC = 2;
constexpr u16 NBD_CMD_FLUSH = 3;
constexpr u16 NBD_CMD_TRIM = 4;
constexpr u16 NBD_CMD_CACHE = 5;
constexpr u16 NBD_CMD_WRITE_ZEROES = 6;
constexpr u16 NBD_CMD_BLOCK_STATUS = 7;
constexpr u16 NBD_CMD_RESIZE = 8;

// "Command flags".
constexpr u16 NBD_CMD_FLAG_FUA = 1 << 0;
constexpr u16 NBD_CMD_FLAG_NO_HOLE = 1 << 1;
constexpr u16 NBD_CMD_FLAG_DF = 1 << 2;
constexpr u16 NBD_CMD_FLAG_REQ_ONE = 1 << 3;

// "Structured reply chunk message": flags and types.
constexpr u16 NBD_REPLY_FLAG_DONE = 1 << 0;
constexpr u16 NBD_REPLY_TYPE_NONE = 0;
constexpr u16 NBD_REPLY_TYPE_OFFSET_DATA = 1;
constexpr u16 NBD_REPLY_TYPE_OFFSET_HOLE = 2;
constexpr u16 NBD_REPLY_TYPE_BLOCK_STATUS = 5;
constexpr u16 NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;
constexpr u16 NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

// "Error values".
constexpr u32 NBD_EPERM = 1;
constexpr u32 NBD_EIO = 5;
constexpr u32 NBD_ENOMEM = 12;
constexpr u32 NBD_EINVAL = 22;
constexpr u32 NBD_ENOSPC = 28;
constexpr u32 NBD_EOVERFLOW = 75;
constexpr u32 NBD_ENOTSUP = 95;
constexpr u32 NBD_ESHUTDOWN = 108;

// "base:allocation" metadata context and its status flags.
constexpr std::string_view BASE_ALLOCATION = "base:allocation";
constexpr u32 NBD_STATE_HOLE = 1 << 0;
constexpr u32 NBD_STATE_ZERO = 1 << 1;

// Sizes of the fixed headers.
constexpr size_t REQUEST_SIZE = 28;
constexpr size_t SIMPLE_REPLY_SIZE = 16;
constexpr size_t STRUCTURED_REPLY_SIZE = 20;
constexpr size_t OPTION_HEADER_SIZE = 16;

// Strings (export names, queries) "MUST be no longer than 4096 bytes".
constexpr size_t MAX_STRING = 4096;
// The default TCP port ("IANA"), and the largest payload a client may send when the server
// advertises no maximum block size ("Block size constraints").
constexpr u16 NBD_DEFAULT_PORT = 10809;
constexpr u32 DEFAULT_MAX_BLOCK = 32 * 1024 * 1024;

// Big-endian field access on byte buffers; callers check bounds first.
inline u16 load_be16(u8 const* p) { return static_cast<u16>(p[0] << 8 | p[1]); }
inline u32 load_be32(u8 const* p) { return static_cast<u32>(load_be16(p)) << 16 | load_be16(p + 2); }
inline u64 load_be64(u8 const* p) { return static_cast<u64>(load_be32(p)) << 32 | load_be32(p + 4); }

inline void store_be16(u8* p, u16 v)
{
    p[0] = static_cast<u8>(v >> 8);
    p[1] = static_cast<u8>(v);
}
inline void store_be32(u8* p, u32 v)
{
    store_be16(p, static_cast<u16>(v >> 16));
    store_be16(p + 2, static_cast<u16>(v));
}
inline void store_be64(u8* p, u64 v)
{
    store_be32(p, static_cast<u32>(v >> 32));
    store_be32(p + 4, static_cast<u32>(v));
}

// Appends big-endian fields to a growing message.
class WireWriter {
public:
    void u16_field(u16 v) { store_be16(grow(2), v); }
    void u32_field(u32 v) { store_be32(grow(4), v); }
    void u64_field(u64 v) { store_be64(grow(8), v); }
    void bytes(std::span<u8 const> data)
    {
        if (!data.empty())
            std::memcpy(grow(data.size()), data.data(), data.size());
    }
    void text(std::string_view s) { bytes({ reinterpret_cast<u8 const*>(s.data()), s.size() }); }
    std::vector<u8> const& data() const { return m_bytes; }

private:
    // Appends n bytes and returns where they start (resize + memcpy rather than inserts, which
    // GCC 12's -Wstringop-overflow misjudges).
    u8* grow(size_t n)
    {
        size_t old_size = m_bytes.size();
        m_bytes.resize(old_size + n);
        return m_bytes.data() + old_size;
    }
    std::vector<u8> m_bytes;
};

// Reads big-endian fields from an option payload; every read is bounds-checked and a read past
// the end makes ok() false for good (and yields zeroes), so a parser checks once at the end.
class WireReader {
public:
    explicit WireReader(std::span<u8 const> data)
        : m_data(data)
    {
    }
    u16 u16_field() { return take(2) ? load_be16(m_data.data() + m_position - 2) : 0; }
    u32 u32_field() { return take(4) ? load_be32(m_data.data() + m_position - 4) : 0; }
    std::string_view text(size_t length)
    {
        if (!take(length))
            return {};
        return { reinterpret_cast<char const*>(m_data.data() + m_position - length), length };
    }
    bool ok() const { return m_ok; }
    size_t remaining() const { return m_data.size() - m_position; }

private:
    bool take(size_t n)
    {
        if (!m_ok || n > remaining()) {
            m_ok = false;
            return false;
        }
        m_position += n;
        return true;
    }
    std::span<u8 const> m_data;
    size_t m_position { 0 };
    bool m_ok { true };
};

// One transmission-phase request header ("Request message").
struct Request {
    u32 magic { 0 };
    u16 flags { 0 };
    u16 type { 0 };
    u64 cookie { 0 };
    u64 offset { 0 };
    u32 length { 0 };
};

// Decodes the fixed 28-byte header; no validation.
Request decode_request(std::span<u8 const, REQUEST_SIZE> header);
// Encodes a request header (the magic is always NBD_REQUEST_MAGIC).
void encode_request(Request const& request, std::span<u8, REQUEST_SIZE> header);

// "NBD_CMD_READ" and so on, or "command 42".
std::string command_name(u16 type);

// Maps a device error to the NBD error value a server sends.
u32 nbd_error_for(Error const& error);
// The errno value an NBD error value received by a client stands for (EIO for unknown values).
int errno_for_nbd_error(u32 error);

} // namespace kasou::storage::nbd
