#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage {

enum class IoOpcode : u8 {
    Read,
    Write,
    Flush, // fdatasync of the whole file; offset, buffer and length are ignored
};

// One transfer on a file descriptor. The buffer must stay valid until the request completes.
struct IoRequest {
    IoOpcode opcode { IoOpcode::Read };
    int fd { -1 };
    u64 offset { 0 };
    u8* buffer { nullptr }; // written into by Read, read from by Write
    u32 length { 0 };
    bool fua { false };     // Write only: durable when it completes (RWF_DSYNC or write + fdatasync)
    u64 user_data { 0 };    // handed back in the completion
};

// The outcome of one request: the whole length was transferred (error == 0) or it failed with an
// errno value. Short transfers never surface: an engine continues them itself, and an end of file
// before the whole length is EIO.
struct IoCompletion {
    u64 user_data { 0 };
    int error { 0 };
};

enum class IoEngineKind : u8 {
    Sync,  // pread / pwrite on the calling thread
    Uring, // io_uring: a batch goes to the kernel in one system call and completes in any order
};

// Submits reads, writes and flushes on file descriptors, singly or in batches.
//
// Threading: an engine belongs to one thread at a time; it is not safe to call from two threads
// at once (an io_uring ring has one submitter). Share engines between threads through an
// IoEnginePool. Requests queued on an engine may target any number of descriptors.
//
// Use: enqueue() up to queue_depth() requests, then submit(), which hands them to the kernel and
// waits for at least `wait_for` completions (0: just submit and collect what is done). Completions
// come back in any order. The synchronous helpers (read, write, flush, run) need an idle engine.
class IoEngine {
public:
    virtual ~IoEngine() = default;

    virtual IoEngineKind kind() const = 0;
    // How many requests may be queued or in flight at once.
    virtual u32 queue_depth() const = 0;
    // Requests queued or submitted whose completion has not yet been returned.
    virtual u32 in_flight() const = 0;

    // Queues a request for the next submit(); fails with EBUSY when queue_depth() are in flight.
    virtual ErrorOr<void> enqueue(IoRequest const& request) = 0;
    // Submits what is queued; appends completions to `out` until at least wait_for are there.
    virtual ErrorOr<void> submit(u32 wait_for, std::vector<IoCompletion>& out) = 0;

    // Runs a batch to completion; the first failure is returned after all have finished.
    ErrorOr<void> run(std::span<IoRequest const> batch);
    // Runs a batch to completion and puts each request's errno value (0: done) into errors, which
    // has one element per request. Fails only when the engine itself does.
    ErrorOr<void> run_each(std::span<IoRequest const> batch, std::span<int> errors);
    ErrorOr<void> read(int fd, u64 offset, std::span<u8> buffer);
    ErrorOr<void> write(int fd, u64 offset, std::span<u8 const> data, bool fua);
    ErrorOr<void> flush(int fd);
};

// Makes an engine of the given kind; queue_depth bounds requests in flight (at least 1).
ErrorOr<std::unique_ptr<IoEngine>> create_io_engine(IoEngineKind kind, u32 queue_depth);

// "sync" or "uring" (also "io_uring").
ErrorOr<IoEngineKind> parse_io_engine_kind(std::string_view text);
char const* io_engine_kind_name(IoEngineKind kind);

} // namespace kasou::storage
