#pragma once

#include <vector>

#include "storage/io/io_engine.h"

namespace kasou::storage {

// The plain engine: submit() performs the queued requests one after another with pread / pwrite /
// fdatasync on the calling thread, so every request has completed when submit() returns. Lowest
// latency for data in the page cache; no parallelism.
class SyncEngine final : public IoEngine {
public:
    explicit SyncEngine(u32 queue_depth)
        : m_queue_depth(queue_depth)
    {
    }

    IoEngineKind kind() const override { return IoEngineKind::Sync; }
    u32 queue_depth() const override { return m_queue_depth; }
    u32 in_flight() const override { return static_cast<u32>(m_queued.size()); }
    ErrorOr<void> enqueue(IoRequest const& request) override;
    ErrorOr<void> submit(u32 wait_for, std::vector<IoCompletion>& out) override;

private:
    u32 m_queue_depth;
    std::vector<IoRequest> m_queued;
};

} // namespace kasou::storage
