// Feeds arbitrary virtio-vsock tx chains to the parser and then to a device whose host side is a
// socket directory with nothing listening: each packet must be refused as malformed, or parse to
// a payload of exactly `len` bytes inside guest RAM and be answered without crashing (requests to
// unknown ports, RST, unknown operations). The device is reset after each input so its answers do
// not pile up.

#include <cstddef>
#include <cstdint>

#include "base/sys_path.h"
#include "fuzz_queue.h"
#include "virtio/vsock/vsock_device.h"
#include "virtio/vsock/vsock_packet.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    using namespace kasou::virtio::vsock;
    static std::string directory = MUST(sys::make_temp_dir("/tmp/kasou-vsock-fuzz-XXXXXX"));
    static auto device = MUST(VsockDevice::create({ 3, directory + "/v.sock" }));
    {
        auto queue = fuzz::queue_from(data, size);
        for (int i = 0; i < 16; ++i) {
            auto chain = queue.pop();
            if (!chain || !*chain)
                break;
            if (auto packet = VsockPacket::parse(**chain)) {
                u64 total = 0;
                for (auto const& piece : packet->payload) {
                    if (!fuzz::in_ram(piece.iov_base, piece.iov_len))
                        __builtin_trap();
                    total += piece.iov_len;
                }
                if (total != packet->header.len)
                    __builtin_trap();
            }
            (void)queue.push((*chain)->head, 0);
        }
    }
    auto queue = fuzz::queue_from(data, size);
    (void)device->process(TXQ, queue);
    device->reset();
    return 0;
}
