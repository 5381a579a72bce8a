#include "storage/io/uring_engine.h"

#include <cerrno>
#include <fcntl.h>
#include <linux/fs.h>

#include "base/try.h"

namespace kasou::storage {

UringEngine::UringEngine(u32 queue_depth)
    : m_slots(queue_depth)
{
    m_free_slots.reserve(queue_depth);
    for (u32 i = queue_depth; i > 0; --i)
        m_free_slots.push_back(i - 1);
}

ErrorOr<std::unique_ptr<UringEngine>> UringEngine::create(u32 queue_depth)
{
    std::unique_ptr<UringEngine> engine(new UringEngine(queue_depth));
    // COOP_TASKRUN: completions are processed when this thread enters the kernel anyway, without
    // an interrupting task-work signal; older kernels lack it, so fall back to no flags.
    int rc = io_uring_queue_init(queue_depth, &engine->m_ring, IORING_SETUP_COOP_TASKRUN);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(queue_depth, &engine->m_ring, 0);
    if (rc < 0)
        return make_errno_error(-rc, "io_uring_queue_init");
    engine->m_ring_ready = true;
    return engine;
}

UringEngine::~UringEngine()
{
    if (m_ring_ready)
        io_uring_queue_exit(&m_ring);
}

ErrorOr<void> UringEngine::prepare(u32 index)
{
    io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
    if (!sqe) {
        // The submission queue is full of requests not yet handed over: hand them over now.
        int rc = io_uring_submit(&m_ring);
        if (rc < 0)
            return make_errno_error(-rc, "io_uring_submit");
        sqe = io_uring_get_sqe(&m_ring);
        if (!sqe)
            return make_errno_error(EBUSY, "io_uring_get_sqe");
    }
    auto const& slot = m_slots[index];
    auto const& request = slot.request;
    switch (request.opcode) {
    case IoOpcode::Read:
        io_uring_prep_read(sqe, request.fd, request.buffer + slot.done, request.length - slot.done, request.offset + slot.done);
        break;
    case IoOpcode::Write:
        io_uring_prep_write(sqe, request.fd, request.buffer + slot.done, request.length - slot.done, request.offset + slot.done);
        if (request.fua)
            sqe->rw_flags = RWF_DSYNC;
        break;
    case IoOpcode::Flush:
        io_uring_prep_fsync(sqe, request.fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data64(sqe, index);
    return {};
}

ErrorOr<void> UringEngine::enqueue(IoRequest const& request)
{
    if (m_free_slots.empty())
        return make_errno_error(EBUSY, "I/O engine queue");
    u32 index = m_free_slots.back();
    m_slots[index] = Slot { .request = request, .done = 0 };
    TRY(prepare(index));
    m_free_slots.pop_back();
    ++m_in_flight;
    return {};
}

ErrorOr<void> UringEngine::submit(u32 wait_for, std::vector<IoCompletion>& out)
{
    u32 collected = 0;
    for (;;) {
        bool must_wait = collected < wait_for && m_in_flight > 0;
        int rc = io_uring_submit_and_wait(&m_ring, must_wait ? 1 : 0);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return make_errno_error(-rc, "io_uring_enter");

        io_uring_cqe* cqe = nullptr;
        unsigned head = 0;
        unsigned seen = 0;
        bool resubmitted = false;
        io_uring_for_each_cqe(&m_ring, head, cqe)
        {
            ++seen;
            auto index = static_cast<u32>(io_uring_cqe_get_data64(cqe));
            auto& slot = m_slots[index];
            int error = 0;
            bool finished = true;
            if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
                finished = false;
            } else if (cqe->res < 0) {
                error = -cqe->res;
            } else if (slot.request.opcode != IoOpcode::Flush) {
                if (cqe->res == 0 && slot.done < slot.request.length)
                    error = EIO; // end of file inside the range
                slot.done += static_cast<u32>(cqe->res);
                finished = error != 0 || slot.done >= slot.request.length;
            }
            if (!finished) {
                TRY(prepare(index));
                resubmitted = true;
                continue;
            }
            out.push_back({ .user_data = slot.request.user_data, .error = error });
            m_free_slots.push_back(index);
            --m_in_flight;
            ++collected;
        }
        io_uring_cq_advance(&m_ring, seen);
        if (collected >= wait_for || m_in_flight == 0) {
            if (resubmitted) {
                // Hand the continuations to the kernel before returning; they complete later.
                int submitted = io_uring_submit(&m_ring);
                if (submitted < 0)
                    return make_errno_error(-submitted, "io_uring_submit");
            }
            return {};
        }
    }
}

} // namespace kasou::storage
