#include "virtio/net/tap.h"

#include <cstring>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "virtio/net/net_header.h"

namespace kasou::virtio::net {

namespace {

constexpr short TAP_FLAGS = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;

std::string interface_name(ifreq const& request)
{
    return std::string(request.ifr_name, strnlen(request.ifr_name, IFNAMSIZ));
}

} // namespace

ErrorOr<Tap> Tap::open(std::string const& name)
{
    if (name.size() >= IFNAMSIZ)
        return make_error(fmt::format("tap name '{}' is longer than {} characters", name, IFNAMSIZ - 1));
    auto fd = TRY(sys::open("/dev/net/tun", O_RDWR | O_NONBLOCK));
    ifreq request {};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_flags = TAP_FLAGS;
    TRY(sys::ioctl(fd.get(), TUNSETIFF, &request, "TUNSETIFF").map_error([&](Error const& e) {
        return e.with_prefix(fmt::format("tap '{}'", name));
    }));
    int header_size = HEADER_BYTES;
    TRY(sys::ioctl(fd.get(), TUNSETVNETHDRSZ, &header_size, "TUNSETVNETHDRSZ"));
    return Tap(std::move(fd), interface_name(request));
}

ErrorOr<Tap> Tap::adopt(Fd fd)
{
    ifreq request {};
    TRY(sys::ioctl(fd.get(), TUNGETIFF, &request, "TUNGETIFF").map_error([&](Error const& e) {
        return e.with_prefix(fmt::format("descriptor {} is not a tap", fd.get()));
    }));
    if ((request.ifr_flags & TAP_FLAGS) != TAP_FLAGS)
        return make_error(fmt::format("tap {} (descriptor {}) was not opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR", interface_name(request),
            fd.get()));
    int header_size = HEADER_BYTES;
    TRY(sys::ioctl(fd.get(), TUNSETVNETHDRSZ, &header_size, "TUNSETVNETHDRSZ"));
    TRY(sys::set_nonblocking(fd.get()));
    return Tap(std::move(fd), interface_name(request));
}

ErrorOr<void> Tap::set_offload(unsigned offloads) const
{
    TRY(sys::ioctl(m_fd.get(), TUNSETOFFLOAD, static_cast<unsigned long>(offloads), "TUNSETOFFLOAD"));
    return {};
}

} // namespace kasou::virtio::net
