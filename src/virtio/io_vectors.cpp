#include "virtio/io_vectors.h"

#include <algorithm>

namespace kasou::virtio {

std::vector<iovec> io_vectors(std::vector<std::span<u8>> const& buffers, u64 skip, u64 limit)
{
    std::vector<iovec> vectors;
    for (auto const& buffer : buffers) {
        if (limit == 0)
            break;
        if (skip >= buffer.size()) {
            skip -= buffer.size();
            continue;
        }
        u64 count = std::min<u64>(buffer.size() - skip, limit);
        vectors.push_back(iovec { buffer.data() + skip, count });
        limit -= count;
        skip = 0;
    }
    return vectors;
}

} // namespace kasou::virtio
