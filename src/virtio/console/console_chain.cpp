#include "virtio/console/console_chain.h"

#include <fmt/format.h>

namespace kasou::virtio::console {

ErrorOr<std::vector<std::span<u8>>> transmit_data(DescriptorChain const& chain)
{
    if (!chain.writable.empty())
        return make_error(fmt::format("virtio-console transmitq chain {} has {} device-writable bytes", chain.head, chain.writable_bytes()));
    return chain.readable;
}

ErrorOr<std::vector<std::span<u8>>> receive_room(DescriptorChain const& chain)
{
    if (!chain.readable.empty())
        return make_error(fmt::format("virtio-console receiveq chain {} has {} device-readable bytes", chain.head, chain.readable_bytes()));
    if (chain.writable.empty())
        return make_error(fmt::format("virtio-console receiveq chain {} has no room", chain.head));
    return chain.writable;
}

} // namespace kasou::virtio::console
