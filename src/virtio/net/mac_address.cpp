#include "virtio/net/mac_address.h"

#include <charconv>
#include <random>

#include <fmt/format.h>

namespace kasou::virtio::net {

ErrorOr<MacAddress> parse_mac(std::string_view text)
{
    MacAddress mac {};
    auto bad = [&] { return make_error(fmt::format("'{}' is not a MAC address like 52:54:00:12:34:56", text)); };
    if (text.size() != 17)
        return bad();
    for (size_t i = 0; i < mac.size(); ++i) {
        char const* first = text.data() + 3 * i;
        if (i + 1 < mac.size() && first[2] != ':')
            return bad();
        auto [end, error] = std::from_chars(first, first + 2, mac[i], 16);
        if (error != std::errc() || end != first + 2)
            return bad();
    }
    if (mac[0] & 1)
        return make_error(fmt::format("MAC address {} is a multicast address", text));
    return mac;
}

std::string format_mac(MacAddress const& mac)
{
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

MacAddress random_mac()
{
    std::random_device source;
    MacAddress mac;
    for (auto& octet : mac)
        octet = static_cast<u8>(source());
    mac[0] = static_cast<u8>((mac[0] & 0xFC) | 0x02);
    return mac;
}

} // namespace kasou::virtio::net
