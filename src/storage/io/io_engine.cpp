#include "storage/io/io_engine.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/io/sync_engine.h"
#include "storage/io/uring_engine.h"

namespace kasou::storage {

ErrorOr<void> IoEngine::run_each(std::span<IoRequest const> batch, std::span<int> errors)
{
    if (in_flight() != 0)
        return make_error(ErrorKind::Internal, "I/O engine: run() needs an idle engine");
    if (errors.size() != batch.size())
        return make_error(ErrorKind::Internal, "I/O engine: run_each() needs one error slot per request");
    std::vector<IoCompletion> completions;
    size_t next = 0;
    size_t done = 0;
    while (done < batch.size()) {
        // Fill the queue as far as it goes, then wait for at least one completion to make room.
        while (next < batch.size() && in_flight() < queue_depth()) {
            IoRequest request = batch[next];
            request.user_data = next++;
            TRY(enqueue(request));
        }
        completions.clear();
        if (auto submitted = submit(1, completions); !submitted) {
            // Requests still in flight write into their buffers whenever they complete: wait for
            // them (as far as the engine still can) before the caller reuses those buffers.
            for (int attempt = 0; in_flight() > 0 && attempt < 1000; ++attempt) {
                completions.clear();
                (void)submit(in_flight(), completions);
            }
            return submitted;
        }
        for (auto const& completion : completions)
            errors[completion.user_data] = completion.error;
        done += completions.size();
    }
    return {};
}

ErrorOr<void> IoEngine::run(std::span<IoRequest const> batch)
{
    std::vector<int> errors(batch.size(), 0);
    TRY(run_each(batch, errors));
    for (size_t i = 0; i < batch.size(); ++i) {
        if (errors[i] != 0) {
            IoOpcode opcode = batch[i].opcode;
            return make_errno_error(errors[i], opcode == IoOpcode::Read ? "read" : opcode == IoOpcode::Write ? "write" : "fdatasync");
        }
    }
    return {};
}

ErrorOr<void> IoEngine::read(int fd, u64 offset, std::span<u8> buffer)
{
    IoRequest request { .opcode = IoOpcode::Read, .fd = fd, .offset = offset, .buffer = buffer.data(), .length = static_cast<u32>(buffer.size()) };
    if (buffer.size() > UINT32_MAX)
        return make_error(fmt::format("I/O engine: a single read of {} bytes is too large", buffer.size()));
    return run({ &request, 1 });
}

ErrorOr<void> IoEngine::write(int fd, u64 offset, std::span<u8 const> data, bool fua)
{
    if (data.size() > UINT32_MAX)
        return make_error(fmt::format("I/O engine: a single write of {} bytes is too large", data.size()));
    IoRequest request { .opcode = IoOpcode::Write, .fd = fd, .offset = offset, .buffer = const_cast<u8*>(data.data()), .length = static_cast<u32>(data.size()), .fua = fua };
    return run({ &request, 1 });
}

ErrorOr<void> IoEngine::flush(int fd)
{
    IoRequest request { .opcode = IoOpcode::Flush, .fd = fd };
    return run({ &request, 1 });
}

ErrorOr<std::unique_ptr<IoEngine>> create_io_engine(IoEngineKind kind, u32 queue_depth)
{
    queue_depth = std::max<u32>(queue_depth, 1);
    switch (kind) {
    case IoEngineKind::Sync:
        return std::unique_ptr<IoEngine>(std::make_unique<SyncEngine>(queue_depth));
    case IoEngineKind::Uring:
        return std::unique_ptr<IoEngine>(TRY(UringEngine::create(queue_depth)));
    }
    return make_error(ErrorKind::Internal, "unknown I/O engine kind");
}

ErrorOr<IoEngineKind> parse_io_engine_kind(std::string_view text)
{
    if (text == "sync")
        return IoEngineKind::Sync;
    if (text == "uring" || text == "io_uring")
        return IoEngineKind::Uring;
    return make_error(fmt::format("unknown I/O engine '{}' (expected sync or uring)", text));
}

char const* io_engine_kind_name(IoEngineKind kind)
{
    return kind == IoEngineKind::Sync ? "sync" : "uring";
}

} // namespace kasou::storage
