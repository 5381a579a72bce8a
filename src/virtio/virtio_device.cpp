#include "virtio/virtio_device.h"

#include <algorithm>
#include <cstring>

namespace kasou::virtio {

char const* device_type_name(u16 type)
{
    switch (type) {
    case DEVICE_NET:
        return "net";
    case DEVICE_BLOCK:
        return "blk";
    case DEVICE_CONSOLE:
        return "console";
    case DEVICE_ENTROPY:
        return "rng";
    case DEVICE_VSOCK:
        return "vsock";
    default:
        return "dev";
    }
}

void copy_config(std::span<u8 const> config, u64 offset, std::span<u8> out)
{
    std::fill(out.begin(), out.end(), 0);
    if (offset < config.size())
        std::memcpy(out.data(), config.data() + offset, std::min<u64>(out.size(), config.size() - offset));
}

} // namespace kasou::virtio
