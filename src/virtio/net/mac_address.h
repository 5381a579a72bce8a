#pragma once

#include <array>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/types.h"

namespace kasou::virtio::net {

// An Ethernet address.
using MacAddress = std::array<u8, 6>;

// Parses "52:54:00:12:34:56" (hex, colon-separated); refuses multicast addresses, which no NIC
// may own.
ErrorOr<MacAddress> parse_mac(std::string_view text);
std::string format_mac(MacAddress const& mac);
// A random locally administered unicast address (the first octet's low bits are 10).
MacAddress random_mac();

} // namespace kasou::virtio::net
