#pragma once

#include <memory>
#include <vector>

#include <liburing.h>

#include "storage/io/io_engine.h"

namespace kasou::storage {

// The io_uring engine: requests queued by enqueue() go to the kernel in one io_uring_enter per
// submit(), run concurrently and complete in any order. A short read or write (a signal, a
// partially cached range) is continued by re-submitting the rest, so a completion always covers
// the whole request. Owns its ring; one thread at a time (see IoEngine).
class UringEngine final : public IoEngine {
public:
    static ErrorOr<std::unique_ptr<UringEngine>> create(u32 queue_depth);
    ~UringEngine() override;
    UringEngine(UringEngine const&) = delete;
    UringEngine& operator=(UringEngine const&) = delete;

    IoEngineKind kind() const override { return IoEngineKind::Uring; }
    u32 queue_depth() const override { return static_cast<u32>(m_slots.size()); }
    u32 in_flight() const override { return m_in_flight; }
    ErrorOr<void> enqueue(IoRequest const& request) override;
    ErrorOr<void> submit(u32 wait_for, std::vector<IoCompletion>& out) override;

private:
    // A request in flight and how much of it is done; its index is the SQE's user_data.
    struct Slot {
        IoRequest request;
        u32 done { 0 };
    };

    explicit UringEngine(u32 queue_depth);
    // Puts the unfinished part of slot `index` into a fresh SQE.
    ErrorOr<void> prepare(u32 index);

    io_uring m_ring {};
    bool m_ring_ready { false };
    std::vector<Slot> m_slots;
    std::vector<u32> m_free_slots;
    u32 m_in_flight { 0 };
};

} // namespace kasou::storage
