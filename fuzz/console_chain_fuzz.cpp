// Serves arbitrary virtio-console transmitq chains into /dev/null and parses the same chains as
// receiveq chains: each must be refused with an error or yield buffers of one direction only,
// inside guest RAM.

#include <cstddef>
#include <cstdint>
#include <fcntl.h>

#include "base/sys_file.h"
#include "fuzz_queue.h"
#include "virtio/console/console_chain.h"
#include "virtio/console/console_device.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    using namespace kasou::virtio::console;
    static Fd sink = MUST(sys::open("/dev/null", O_WRONLY));
    static auto device = MUST(ConsoleDevice::create({ -1, sink.get() }));
    {
        auto queue = fuzz::queue_from(data, size);
        (void)device->process(TRANSMITQ, queue);
    }
    auto queue = fuzz::queue_from(data, size);
    for (int i = 0; i < 16; ++i) {
        auto chain = queue.pop();
        if (!chain || !*chain)
            break;
        if (auto room = receive_room(**chain)) {
            for (auto const& buffer : *room)
                if (!fuzz::in_ram(buffer.data(), buffer.size()) || !(*chain)->readable.empty())
                    __builtin_trap();
        }
        (void)queue.push((*chain)->head, 0);
    }
    return 0;
}
