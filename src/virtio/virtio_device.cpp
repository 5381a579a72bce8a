#include "virtio/virtio_device.h"

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

} // namespace kasou::virtio
