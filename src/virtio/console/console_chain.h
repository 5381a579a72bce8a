#pragma once

#include <span>
#include <vector>

#include "base/error.h"
#include "virtio/descriptor_chain.h"

namespace kasou::virtio::console {

// The two kinds of chain a virtio-console port queue carries (virtio 1.2, 5.3.6): a transmitq
// chain holds device-readable bytes only, a receiveq chain device-writable room only. A chain with
// buffers of the other direction is a driver error, returned as such (the device then needs a
// reset). Parsing touches no host descriptor, so the fuzzer drives it alone.
ErrorOr<std::vector<std::span<u8>>> transmit_data(DescriptorChain const& chain);
ErrorOr<std::vector<std::span<u8>>> receive_room(DescriptorChain const& chain);

} // namespace kasou::virtio::console
