#include "virtio/rng/entropy_device.h"

#include <algorithm>

#include "base/sys_random.h"
#include "base/try.h"

namespace kasou::virtio {

void EntropyDevice::read_config(u64 offset, std::span<u8> data)
{
    copy_config({}, offset, data); // virtio-rng has no configuration fields
}

ErrorOr<void> EntropyDevice::process(u16, SplitQueue& queue)
{
    while (auto chain = TRY(queue.pop())) {
        u64 written = 0;
        for (auto buffer : chain->writable) {
            while (!buffer.empty()) {
                size_t n = TRY(sys::getrandom(buffer.data(), buffer.size()));
                buffer = buffer.subspan(n);
                written += n;
            }
        }
        TRY(queue.push(chain->head, static_cast<u32>(std::min<u64>(written, 0xFFFF'FFFF))));
    }
    return {};
}

} // namespace kasou::virtio
