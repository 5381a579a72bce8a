// A hostile vhost-user front-end: the input is the byte stream it sends (its first byte says how
// many descriptors, small shared-memory files, come with the first message). Each message is read
// with read_message, checked with parse_message and, when it parses, carried out by a vhost-user-blk
// back-end over a small in-memory disk. Nothing may crash, hang or touch memory out of bounds; a
// message that is refused ends the stream, as it ends a real connection.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sys/socket.h>
#include <vector>

#include "base/sys_file.h"
#include "base/sys_memory.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "fuzz_disk.h"
#include "vhost_user/blk_backend.h"
#include "vhost_user/message.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    if (size < 1 || size > 32 * 1024)
        return 0;
    size_t fd_count = data[0] % 10;
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return 0;
    Fd frontend(pair[0]);
    Fd backend_end(pair[1]);
    std::vector<Fd> files;
    std::vector<int> raw_fds;
    for (size_t i = 0; i < fd_count; ++i) {
        files.push_back(MUST(sys::memfd_create("fuzz", 0)));
        MUST(sys::ftruncate(files.back().get(), 64 * 1024));
        raw_fds.push_back(files.back().get());
    }
    if (size > 1 && !sys::send_with_fds(frontend.get(), data + 1, size - 1, raw_fds))
        return 0;
    frontend.reset();

    auto backend = MUST(vhost_user::BlkBackend::create(std::make_shared<fuzz::FuzzDisk>(), { .queues = 2, .max_queue_size = 64, .serial = "fuzz",
        .read_only = false, .io_poll = std::chrono::nanoseconds { 0 } }));
    for (;;) {
        auto raw = vhost_user::read_message(backend_end.get(), -1);
        if (!raw || !*raw)
            break;
        auto message = vhost_user::parse_message(std::move(**raw));
        if (!message)
            break;
        if (!backend->handle(std::move(*message)))
            break;
    }
    return 0;
}
