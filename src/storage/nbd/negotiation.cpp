#include "storage/nbd/negotiation.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

namespace {

// Meta-context id handed out for base:allocation (any value the server picks is allowed).
constexpr u32 BASE_ALLOCATION_ID = 1;

} // namespace

ErrorOr<void> Negotiation::reply(u32 option, u32 type, std::span<u8 const> data)
{
    WireWriter message;
    message.u64_field(NBD_OPTION_REPLY_MAGIC);
    message.u32_field(option);
    message.u32_field(type);
    message.u32_field(static_cast<u32>(data.size()));
    message.bytes(data);
    auto const& bytes = message.data();
    m_output.insert(m_output.end(), bytes.begin(), bytes.end());
    return {};
}

Negotiation::Negotiation(std::span<Export const> exports, u32 max_payload)
    : m_exports(exports)
    , m_max_payload(max_payload)
{
    WireWriter greeting;
    greeting.u64_field(NBD_MAGIC);
    greeting.u64_field(NBD_IHAVEOPT);
    greeting.u16_field(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    m_output = greeting.data();
}

size_t Negotiation::wanted() const
{
    if (m_state != State::Reading)
        return 0;
    if (!m_have_flags)
        return 4;
    if (!m_header)
        return OPTION_HEADER_SIZE;
    return m_header->second;
}

std::vector<u8> Negotiation::take_output() { return std::exchange(m_output, {}); }

ErrorOr<void> Negotiation::feed(std::span<u8 const> bytes)
{
    if (bytes.size() != wanted())
        return make_error(ErrorKind::Internal, "negotiation fed the wrong number of bytes");
    if (!m_have_flags) {
        u32 client_flags = load_be32(bytes.data());
        if ((client_flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) != 0)
            return make_error(fmt::format("unknown client flags {:#x}", client_flags));
        if (!(client_flags & NBD_FLAG_C_FIXED_NEWSTYLE))
            return make_error("the client does not speak fixed newstyle negotiation");
        m_no_zeroes = client_flags & NBD_FLAG_C_NO_ZEROES;
        m_have_flags = true;
        return {};
    }
    if (!m_header) {
        if (m_options == MAX_OPTIONS)
            return make_error(fmt::format("more than {} options without choosing an export", MAX_OPTIONS));
        ++m_options;
        if (load_be64(bytes.data()) != NBD_IHAVEOPT)
            return make_error(fmt::format("bad option magic {:#018x}", load_be64(bytes.data())));
        u32 option = load_be32(bytes.data() + 8);
        u32 length = load_be32(bytes.data() + 12);
        if (length > MAX_OPTION_PAYLOAD)
            return make_error(fmt::format("option {} carries {} bytes, more than the {}-byte limit", option, length, MAX_OPTION_PAYLOAD));
        m_header = { option, length };
        if (length > 0)
            return {};
        bytes = {};
    }
    u32 option = m_header->first;
    m_header.reset();
    return handle_option(option, bytes);
}

ErrorOr<void> Negotiation::handle_option(u32 option, std::span<u8 const> payload)
{
    switch (option) {
    case NBD_OPT_EXPORT_NAME:
        TRY(handle_export_name(payload));
        m_state = State::Done;
        break;
    case NBD_OPT_ABORT:
        // The client may already be gone; the acknowledgement is a courtesy.
        TRY(reply(option, NBD_REP_ACK));
        m_state = State::Ended;
        break;
    case NBD_OPT_LIST:
        TRY(handle_list(payload));
        break;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        if (TRY(handle_info_or_go(option, payload)))
            m_state = State::Done;
        break;
    case NBD_OPT_STRUCTURED_REPLY:
        if (!payload.empty()) {
            TRY(reply_error(option, NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data"));
            break;
        }
        m_session.structured_replies = true;
        TRY(reply(option, NBD_REP_ACK));
        break;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        TRY(handle_meta_context(option, payload));
        break;
    default:
        TRY(reply_error(option, NBD_REP_ERR_UNSUP, fmt::format("option {} is not supported", option)));
        break;
    }
    return {};
}


ErrorOr<void> Negotiation::handle_export_name(std::span<u8 const> payload)
{
    std::string_view name(reinterpret_cast<char const*>(payload.data()), payload.size());
    Export const* entry = find_export(m_exports, name);
    // NBD_OPT_EXPORT_NAME has no error reply: the protocol's answer is to close.
    if (!entry)
        return make_error(fmt::format("NBD_OPT_EXPORT_NAME: no export named '{}'", name));
    if (m_meta_export != entry->name)
        m_session.base_allocation = false;
    m_session.export_entry = entry;
    WireWriter message;
    message.u64_field(entry->device->size());
    message.u16_field(transmission_flags(*entry, m_session.structured_replies));
    if (!m_no_zeroes) {
        static constexpr u8 zeroes[124] {};
        message.bytes(zeroes);
    }
    auto const& bytes = message.data();
    m_output.insert(m_output.end(), bytes.begin(), bytes.end());
    return {};
}

ErrorOr<void> Negotiation::handle_list(std::span<u8 const> payload)
{
    if (!payload.empty())
        return reply_error(NBD_OPT_LIST, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
    for (auto const& entry : m_exports) {
        WireWriter server;
        server.u32_field(static_cast<u32>(entry.name.size()));
        server.text(entry.name);
        TRY(reply(NBD_OPT_LIST, NBD_REP_SERVER, server.data()));
    }
    return reply(NBD_OPT_LIST, NBD_REP_ACK);
}

ErrorOr<bool> Negotiation::handle_info_or_go(u32 option, std::span<u8 const> payload)
{
    WireReader in(payload);
    u32 name_length = in.u32_field();
    std::string_view name = name_length <= MAX_STRING ? in.text(name_length) : std::string_view {};
    u16 request_count = in.u16_field();
    std::vector<u16> requests;
    for (u32 i = 0; i < request_count && in.ok(); ++i)
        requests.push_back(in.u16_field());
    if (name_length > MAX_STRING || !in.ok() || in.remaining() != 0) {
        TRY(reply_error(option, NBD_REP_ERR_INVALID, "malformed NBD_OPT_INFO / NBD_OPT_GO request"));
        return false;
    }
    Export const* entry = find_export(m_exports, name);
    if (!entry) {
        TRY(reply_error(option, NBD_REP_ERR_UNKNOWN, fmt::format("no export named '{}'", name)));
        return false;
    }

    BlockDevice const& device = *entry->device;
    for (u16 request : requests) {
        WireWriter info;
        if (request == NBD_INFO_NAME) {
            info.u16_field(NBD_INFO_NAME);
            info.text(entry->name);
        } else if (request == NBD_INFO_BLOCK_SIZE) {
            u32 minimum = device.logical_block_size();
            info.u16_field(NBD_INFO_BLOCK_SIZE);
            // "Block size constraints": minimum <= preferred <= maximum, the maximum a multiple
            // of the minimum.
            u32 maximum = std::max(m_max_payload / minimum * minimum, minimum);
            info.u32_field(minimum);
            info.u32_field(std::min(std::max<u32>(minimum, 4096), maximum));
            info.u32_field(maximum);
        } else {
            continue; // nothing to say about the description or unknown items
        }
        TRY(reply(option, NBD_REP_INFO, info.data()));
    }
    WireWriter info;
    info.u16_field(NBD_INFO_EXPORT);
    info.u64_field(device.size());
    info.u16_field(transmission_flags(*entry, m_session.structured_replies));
    TRY(reply(option, NBD_REP_INFO, info.data()));
    TRY(reply(option, NBD_REP_ACK));
    if (option != NBD_OPT_GO)
        return false;
    if (m_meta_export != entry->name)
        m_session.base_allocation = false;
    m_session.export_entry = entry;
    return true;
}

ErrorOr<void> Negotiation::handle_meta_context(u32 option, std::span<u8 const> payload)
{
    bool const set = option == NBD_OPT_SET_META_CONTEXT;
    WireReader in(payload);
    u32 name_length = in.u32_field();
    std::string_view name = name_length <= MAX_STRING ? in.text(name_length) : std::string_view {};
    u32 query_count = in.u32_field();
    std::vector<std::string_view> queries;
    for (u32 i = 0; i < query_count && in.ok(); ++i) {
        u32 length = in.u32_field();
        if (length > MAX_STRING)
            return reply_error(option, NBD_REP_ERR_INVALID, "meta context query longer than 4096 bytes");
        queries.push_back(in.text(length));
    }
    if (name_length > MAX_STRING || !in.ok() || in.remaining() != 0)
        return reply_error(option, NBD_REP_ERR_INVALID, "malformed meta context request");
    if (set && !m_session.structured_replies)
        return reply_error(option, NBD_REP_ERR_INVALID, "NBD_OPT_SET_META_CONTEXT before NBD_OPT_STRUCTURED_REPLY");
    Export const* entry = find_export(m_exports, name);
    if (!entry)
        return reply_error(option, NBD_REP_ERR_UNKNOWN, fmt::format("no export named '{}'", name));

    // base:allocation is the only context: a list query matches it with an empty query list, the
    // bare namespace "base:" or its full name; a set query only with its full name.
    bool selected = false;
    if (!set && queries.empty())
        selected = true;
    for (auto query : queries)
        selected = selected || query == BASE_ALLOCATION || (!set && query == "base:");
    if (selected) {
        WireWriter context;
        context.u32_field(BASE_ALLOCATION_ID);
        context.text(BASE_ALLOCATION);
        TRY(reply(option, NBD_REP_META_CONTEXT, context.data()));
    }
    if (set) {
        m_session.base_allocation = selected;
        m_meta_export = entry->name;
    }
    return reply(option, NBD_REP_ACK);
}

u16 transmission_flags(Export const& entry, bool structured_replies)
{
    // CAN_MULTI_CONN holds: every connection to an export shares one BlockDevice, whose flush()
    // makes all completed writes durable whichever connection sent them.
    u16 flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM
        | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
    if (structured_replies)
        flags |= NBD_FLAG_SEND_DF;
    if (entry.device->read_only())
        flags |= NBD_FLAG_READ_ONLY;
    return flags;
}

ErrorOr<std::optional<Session>> negotiate(BufferedReader& reader, Transport& transport, std::span<Export const> exports, u32 max_payload)
{
    Negotiation negotiation(exports, max_payload);
    std::vector<u8> input;
    for (;;) {
        auto output = negotiation.take_output();
        if (!output.empty()) {
            iovec vector { output.data(), output.size() };
            auto sent = transport.write_all({ &vector, 1 });
            if (!sent && negotiation.state() != Negotiation::State::Ended)
                return tl::unexpected(sent.error());
        }
        if (negotiation.state() == Negotiation::State::Done)
            return negotiation.session();
        if (negotiation.state() == Negotiation::State::Ended)
            return std::optional<Session> {};
        input.resize(negotiation.wanted());
        if (!TRY(reader.read_exact(input))) {
            if (negotiation.in_option())
                return make_error(ErrorKind::Disconnected, "the client closed the connection in the middle of an option");
            return std::optional<Session> {};
        }
        TRY(negotiation.feed(input));
    }
}

} // namespace kasou::storage::nbd
