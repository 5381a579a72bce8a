#include "storage/nbd/client_handshake.h"

#include <vector>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/nbd/negotiation.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

std::string printable(std::string_view text)
{
    std::string out;
    for (char c : text.substr(0, 200))
        out += c >= 0x20 && c < 0x7f ? c : '?';
    return out;
}

namespace {

class ClientHandshake {
public:
    ClientHandshake(BufferedReader& reader, Transport& transport)
        : m_reader(reader)
        , m_transport(transport)
    {
    }

    ErrorOr<ExportInfo> run(std::string const& export_name);

private:
    struct OptionReply {
        u32 type { 0 };
        std::vector<u8> data;
    };

    ErrorOr<void> read(std::span<u8> out)
    {
        if (!TRY(m_reader.read_exact(out)))
            return make_error(ErrorKind::Disconnected, "the server closed the connection during the handshake");
        return {};
    }
    ErrorOr<void> send_option(u32 option, std::span<u8 const> data);
    ErrorOr<OptionReply> read_reply(u32 option);
    ErrorOr<void> take_info(std::span<u8 const> data);

    BufferedReader& m_reader;
    Transport& m_transport;
    ExportInfo m_info;
    bool m_have_export { false };
    bool m_have_block_size { false };
};

ErrorOr<void> ClientHandshake::send_option(u32 option, std::span<u8 const> data)
{
    WireWriter message;
    message.u64_field(NBD_IHAVEOPT);
    message.u32_field(option);
    message.u32_field(static_cast<u32>(data.size()));
    message.bytes(data);
    iovec vector { const_cast<u8*>(message.data().data()), message.data().size() };
    return m_transport.write_all({ &vector, 1 });
}

ErrorOr<ClientHandshake::OptionReply> ClientHandshake::read_reply(u32 option)
{
    u8 header[20];
    TRY(read(header));
    if (load_be64(header) != NBD_OPTION_REPLY_MAGIC)
        return make_error(fmt::format("bad option reply magic {:#018x}", load_be64(header)));
    if (load_be32(header + 8) != option)
        return make_error(fmt::format("an option reply for option {} while option {} was asked", load_be32(header + 8), option));
    OptionReply reply { .type = load_be32(header + 12), .data = {} };
    u32 length = load_be32(header + 16);
    if (length > MAX_OPTION_PAYLOAD)
        return make_error(fmt::format("an option reply of {} bytes, more than the {}-byte limit", length, MAX_OPTION_PAYLOAD));
    reply.data.resize(length);
    if (length > 0)
        TRY(read(reply.data));
    return reply;
}

ErrorOr<void> ClientHandshake::take_info(std::span<u8 const> data)
{
    WireReader in(data);
    u16 type = in.u16_field();
    if (type == NBD_INFO_EXPORT) {
        if (data.size() != 12)
            return make_error(fmt::format("NBD_INFO_EXPORT of {} bytes (12 expected)", data.size()));
        u64 size = load_be64(data.data() + 2);
        u16 flags = load_be16(data.data() + 10);
        if (size > static_cast<u64>(INT64_MAX))
            return make_error(fmt::format("the export size {} is past 2^63", size));
        m_info.size = size;
        m_info.flags = flags & NBD_FLAG_HAS_FLAGS ? flags : 0;
        m_have_export = true;
    } else if (type == NBD_INFO_BLOCK_SIZE) {
        if (data.size() != 14)
            return make_error(fmt::format("NBD_INFO_BLOCK_SIZE of {} bytes (14 expected)", data.size()));
        u32 minimum = load_be32(data.data() + 2);
        u32 preferred = load_be32(data.data() + 6);
        u32 maximum = load_be32(data.data() + 10);
        auto power_of_two = [](u32 v) { return v != 0 && (v & (v - 1)) == 0; };
        // "Block size constraints": minimum a power of two up to 64 KiB, preferred a power of two
        // at least the minimum, maximum a multiple of the minimum (or 0xffffffff) at least the
        // preferred size.
        if (!power_of_two(minimum) || minimum > 64 * 1024 || !power_of_two(preferred) || preferred < minimum
            || maximum < preferred || (maximum != 0xffff'ffffu && maximum % minimum != 0))
            return make_error(fmt::format("inconsistent block sizes: minimum {}, preferred {}, maximum {}", minimum, preferred, maximum));
        m_info.minimum_block = minimum;
        m_info.preferred_block = preferred;
        m_info.maximum_block = maximum == 0xffff'ffffu ? DEFAULT_MAX_BLOCK / minimum * minimum : maximum;
        m_have_block_size = true;
    } else if (!in.ok()) {
        return make_error("an NBD_REP_INFO reply without an information type");
    }
    // Other information (name, description, unknown types) is of no use to the client.
    return {};
}

ErrorOr<ExportInfo> ClientHandshake::run(std::string const& export_name)
{
    u8 greeting[18];
    TRY(read(greeting));
    if (load_be64(greeting) != NBD_MAGIC)
        return make_error(fmt::format("not an NBD server (greeting magic {:#018x})", load_be64(greeting)));
    if (load_be64(greeting + 8) != NBD_IHAVEOPT)
        return make_error("the server speaks only the oldstyle handshake, which is not supported");
    u16 server_flags = load_be16(greeting + 16);
    if (!(server_flags & NBD_FLAG_FIXED_NEWSTYLE))
        return make_error("the server does not speak fixed newstyle negotiation");
    bool const no_zeroes = server_flags & NBD_FLAG_NO_ZEROES;
    u8 client_flags[4];
    store_be32(client_flags, NBD_FLAG_C_FIXED_NEWSTYLE | (no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
    iovec vector { client_flags, sizeof(client_flags) };
    TRY(m_transport.write_all({ &vector, 1 }));

    TRY(send_option(NBD_OPT_STRUCTURED_REPLY, {}));
    auto structured = TRY(read_reply(NBD_OPT_STRUCTURED_REPLY));
    if (structured.type == NBD_REP_ACK && !structured.data.empty())
        return make_error("an NBD_REP_ACK that carries data");
    if (structured.type != NBD_REP_ACK && !(structured.type & (1u << 31)))
        return make_error(fmt::format("reply type {:#x} to NBD_OPT_STRUCTURED_REPLY", structured.type));
    m_info.structured_replies = structured.type == NBD_REP_ACK;

    if (export_name.size() > MAX_STRING)
        return make_error("the export name is longer than 4096 bytes");
    WireWriter go;
    go.u32_field(static_cast<u32>(export_name.size()));
    go.text(export_name);
    go.u16_field(1);
    go.u16_field(NBD_INFO_BLOCK_SIZE);
    TRY(send_option(NBD_OPT_GO, go.data()));
    for (u32 count = 0;; ++count) {
        if (count == MAX_OPTIONS)
            return make_error(fmt::format("more than {} replies to NBD_OPT_GO", MAX_OPTIONS));
        auto reply = TRY(read_reply(NBD_OPT_GO));
        if (reply.type == NBD_REP_ACK) {
            if (!m_have_export)
                return make_error("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT");
            if (!m_have_block_size)
                m_info.maximum_block = DEFAULT_MAX_BLOCK;
            return m_info;
        }
        if (reply.type == NBD_REP_INFO) {
            TRY(take_info(reply.data));
            continue;
        }
        std::string message = printable({ reinterpret_cast<char const*>(reply.data.data()), reply.data.size() });
        switch (reply.type) {
        case NBD_REP_ERR_UNKNOWN:
            return make_error(ErrorKind::NotFound, fmt::format("the server has no export named '{}' ({})", printable(export_name), message));
        case NBD_REP_ERR_UNSUP:
            return make_error(ErrorKind::Unsupported, fmt::format("the server does not support NBD_OPT_GO ({})", message));
        case NBD_REP_ERR_POLICY:
            return make_error(ErrorKind::PermissionDenied, fmt::format("the server refuses the export by policy ({})", message));
        default:
            if (reply.type & (1u << 31))
                return make_error(fmt::format("the server refused NBD_OPT_GO with error {:#x} ({})", reply.type, message));
            return make_error(fmt::format("unexpected reply type {:#x} to NBD_OPT_GO", reply.type));
        }
    }
}

} // namespace

ErrorOr<ExportInfo> client_handshake(BufferedReader& reader, Transport& transport, std::string const& export_name)
{
    return ClientHandshake(reader, transport).run(export_name);
}

} // namespace kasou::storage::nbd
