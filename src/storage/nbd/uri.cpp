#include "storage/nbd/uri.h"

#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

namespace {

// RFC 3986 percent-decoding; fails on a truncated or non-hex escape.
ErrorOr<std::string> percent_decode(std::string_view text, std::string const& uri)
{
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        unsigned value = 0;
        auto [end, error] = i + 2 < text.size() ? std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16)
                                                : std::from_chars_result { nullptr, std::errc::invalid_argument };
        if (error != std::errc {} || end != text.data() + i + 3)
            return make_error(fmt::format("NBD URI '{}': bad percent escape in '{}'", uri, text));
        out += static_cast<char>(value);
        i += 2;
    }
    return out;
}

} // namespace

ErrorOr<NbdUri> NbdUri::parse(std::string const& text)
{
    auto fail = [&](std::string_view why) -> ErrorOr<NbdUri> { return make_error(fmt::format("NBD URI '{}': {}", text, why)); };
    std::string_view rest = text;
    auto scheme_end = rest.find("://");
    if (scheme_end == std::string_view::npos)
        return fail("not of the form nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH");
    std::string_view scheme = rest.substr(0, scheme_end);
    rest.remove_prefix(scheme_end + 3);
    if (scheme != "nbd" && scheme != "nbd+unix") {
        if (scheme.starts_with("nbds"))
            return fail("TLS (nbds) is not supported");
        return fail(fmt::format("unknown scheme '{}' (known: nbd, nbd+unix)", scheme));
    }
    bool const unix_socket = scheme == "nbd+unix";

    std::string_view query;
    if (auto question = rest.find('?'); question != std::string_view::npos) {
        query = rest.substr(question + 1);
        rest = rest.substr(0, question);
    }
    if (rest.find('#') != std::string_view::npos)
        return fail("a fragment (#) is not allowed");
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view {} : rest.substr(slash + 1);

    NbdUri uri;
    uri.export_name = TRY(percent_decode(path, text));
    if (uri.export_name.size() > MAX_STRING)
        return fail("the export name is longer than 4096 bytes");
    if (authority.find('@') != std::string_view::npos)
        return fail("user names are not supported");

    while (!query.empty()) {
        auto amp = query.find('&');
        auto item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view {} : query.substr(amp + 1);
        if (item.starts_with("socket=") && unix_socket)
            uri.unix_path = TRY(percent_decode(item.substr(7), text));
        else
            return fail(fmt::format("unknown query parameter '{}'", item));
    }

    if (unix_socket) {
        if (!authority.empty())
            return fail("nbd+unix takes no host (nbd+unix:///EXPORT?socket=PATH)");
        if (uri.unix_path.empty())
            return fail("nbd+unix needs ?socket=PATH");
        return uri;
    }

    std::string_view port_text;
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            return fail("unterminated [IPv6] address");
        uri.host = authority.substr(1, close - 1);
        auto after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':'))
            return fail("junk after the [IPv6] address");
        port_text = after.empty() ? after : after.substr(1);
        if (after == ":")
            return fail("the port is empty");
    } else {
        auto colon = authority.rfind(':');
        uri.host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty())
                return fail("the port is empty");
        }
    }
    if (uri.host.empty())
        return fail("the host is missing");
    uri.port = NBD_DEFAULT_PORT;
    if (!port_text.empty()) {
        unsigned port = 0;
        auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (error != std::errc {} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
            return fail(fmt::format("'{}' is not a TCP port", port_text));
        uri.port = static_cast<u16>(port);
    }
    return uri;
}

std::string NbdUri::to_string() const
{
    if (is_unix())
        return fmt::format("nbd+unix:///{}?socket={}", export_name, unix_path);
    if (host.find(':') != std::string::npos)
        return fmt::format("nbd://[{}]:{}/{}", host, port, export_name);
    return fmt::format("nbd://{}:{}/{}", host, port, export_name);
}

} // namespace kasou::storage::nbd
