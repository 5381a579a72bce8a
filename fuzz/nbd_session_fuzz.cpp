// libFuzzer target: the input is everything a client sends on one NBD connection (handshake,
// options, requests and payloads). The server side runs exactly as for a socket, over a raw image
// in a temporary file, and must end the connection cleanly whatever the bytes are.

#include <fcntl.h>

#include <spdlog/spdlog.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "storage/io/raw_file_device.h"
#include "input_transport.h"
#include "storage/nbd/connection.h"

using namespace kasou;
using namespace kasou::storage;

namespace {

std::vector<nbd::Export> const& exports()
{
    static std::vector<nbd::Export> const list = [] {
        auto fd = MUST(sys::open("/tmp", O_TMPFILE | O_RDWR, 0600));
        MUST(sys::ftruncate(fd.get(), 1 * MiB));
        std::vector<nbd::Export> made;
        made.push_back({ .name = "disk", .device = MUST(RawFileDevice::adopt(std::move(fd), "fuzz disk", {})) });
        auto read_only = MUST(sys::open("/tmp", O_TMPFILE | O_RDWR, 0600));
        MUST(sys::ftruncate(read_only.get(), 64 * KiB));
        made.push_back({ .name = "ro", .device = MUST(RawFileDevice::adopt(std::move(read_only), "fuzz ro", { .read_only = true })) });
        return made;
    }();
    return list;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    nbd::InputTransport transport({ data, size });
    // A budget below the largest payload, so refused and waited-for charges are reached too.
    static nbd::MemoryBudget budget(1 * MiB);
    nbd::ConnectionMonitor monitor;
    nbd::serve_connection(transport, exports(), { .max_workers = 1, .budget = budget, .monitor = monitor }, "fuzz");
    return 0;
}
