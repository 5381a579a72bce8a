#pragma once

#include <string>

#include "base/error.h"
#include "base/fd.h"

namespace kasou::virtio::net {

// Offloads the kernel may use in frames it hands to a tap reader (TUNSETOFFLOAD, <linux/if_tun.h>).
constexpr unsigned TAP_OFFLOAD_CSUM = 0x01;
constexpr unsigned TAP_OFFLOAD_TSO4 = 0x02;
constexpr unsigned TAP_OFFLOAD_TSO6 = 0x04;
constexpr unsigned TAP_OFFLOAD_TSO_ECN = 0x08;

// One queue of a Linux tap interface (/dev/net/tun, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), opened
// non-blocking, each frame preceded by the 12-byte virtio-net header in both directions. The
// interface is created when it does not exist and then vanishes with the descriptor; a persistent
// one (`ip tuntap add NAME mode tap`) is attached to as it is. An empty name lets the kernel pick.
class Tap {
public:
    static ErrorOr<Tap> open(std::string const& name);
    // Takes a tap queue opened elsewhere (a descriptor inherited from a management process), which
    // must have been attached with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR.
    static ErrorOr<Tap> adopt(Fd fd);

    int fd() const { return m_fd.get(); }
    std::string const& name() const { return m_name; }
    // Which offloads (TAP_OFFLOAD_*) frames read from the tap may carry; 0 makes the kernel finish
    // every checksum and segment before handing a frame over.
    ErrorOr<void> set_offload(unsigned offloads) const;

private:
    Tap(Fd fd, std::string name)
        : m_fd(std::move(fd))
        , m_name(std::move(name))
    {
    }
    Fd m_fd;
    std::string m_name;
};

} // namespace kasou::virtio::net
