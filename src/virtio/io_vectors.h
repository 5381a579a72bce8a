#pragma once

#include <span>
#include <vector>
#include <sys/uio.h>

#include "base/types.h"

namespace kasou::virtio {

// The part of `buffers` (a chain's readable or writable buffers) from byte `skip` on, at most
// `limit` bytes, as iovecs for readv / writev straight between guest RAM and a host descriptor.
std::vector<iovec> io_vectors(std::vector<std::span<u8>> const& buffers, u64 skip, u64 limit);

} // namespace kasou::virtio
