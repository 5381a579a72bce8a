#pragma once

#include "virtio/virtio_device.h"

namespace kasou::virtio {

// virtio-rng (virtio 1.2, 5.4): one request queue whose device-writable buffers are filled from the
// host's getrandom(2), so a guest never waits for entropy at boot. No configuration space.
class EntropyDevice final : public VirtioDevice {
public:
    u16 device_type() const override { return DEVICE_ENTROPY; }
    u64 device_features() const override { return 0; }
    u16 queue_count() const override { return 1; }
    void read_config(u64, std::span<u8> data) override;
    ErrorOr<void> process(u16 index, SplitQueue& queue) override;
};

} // namespace kasou::virtio
