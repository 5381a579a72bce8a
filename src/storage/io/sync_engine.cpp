#include "storage/io/sync_engine.h"

#include <cerrno>
#include <sys/uio.h>

#include "base/sys_file.h"

namespace kasou::storage {

namespace {

int perform(IoRequest const& request)
{
    ErrorOr<void> result;
    switch (request.opcode) {
    case IoOpcode::Read:
        result = sys::pread_exact(request.fd, request.buffer, request.length, request.offset);
        break;
    case IoOpcode::Write:
        // FUA: this write durable when it returns, and nothing else made to wait for.
        result = sys::pwrite_exact(request.fd, request.buffer, request.length, request.offset, request.fua ? RWF_DSYNC : 0);
        break;
    case IoOpcode::Flush:
        result = sys::fdatasync(request.fd);
        break;
    }
    if (result)
        return 0;
    // pread_exact reports an end of file as a named condition: that is an I/O error here.
    return result.error().is_errno() ? result.error().code() : EIO;
}

} // namespace

ErrorOr<void> SyncEngine::enqueue(IoRequest const& request)
{
    if (m_queued.size() >= m_queue_depth)
        return make_errno_error(EBUSY, "I/O engine queue");
    m_queued.push_back(request);
    return {};
}

ErrorOr<void> SyncEngine::submit(u32, std::vector<IoCompletion>& out)
{
    for (auto const& request : m_queued)
        out.push_back({ .user_data = request.user_data, .error = perform(request) });
    m_queued.clear();
    return {};
}

} // namespace kasou::storage
