// Parses arbitrary virtio-net transmit and receive chains: the first input byte picks the
// negotiated features, the rest lies over the virtqueue. Every chain must be refused with an error
// or come back as a packet of at most MAX_PACKET_BYTES whose buffers lie in guest RAM and whose
// checksum position lies inside the frame.

#include <cstddef>
#include <cstdint>

#include "fuzz_queue.h"
#include "virtio/net/net_header.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    using namespace kasou::virtio::net;
    if (size < 1)
        return 0;
    u64 features = 0;
    for (int bit = 0; bit < 4; ++bit)
        if (data[0] & (1u << bit))
            features |= std::array { F_CSUM, F_HOST_TSO4, F_HOST_TSO6, F_HOST_ECN }[bit];
    auto queue = fuzz::queue_from(data + 1, size - 1);
    for (int i = 0; i < 16; ++i) {
        auto chain = queue.pop();
        if (!chain || !*chain)
            break;
        if (auto packet = TransmitPacket::parse(**chain, features)) {
            u64 total = 0;
            for (auto const& buffer : packet->buffers) {
                if (!fuzz::in_ram(buffer.data(), buffer.size()))
                    __builtin_trap();
                total += buffer.size();
            }
            u64 frame = total - HEADER_BYTES;
            if (total > MAX_PACKET_BYTES || ((packet->header.flags & HDR_F_NEEDS_CSUM) && packet->header.csum_start + packet->header.csum_offset + 2u > frame))
                __builtin_trap();
        }
        (void)check_receive_chain(**chain);
        (void)queue.push((*chain)->head, 0);
    }
    return 0;
}
