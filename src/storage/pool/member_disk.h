#pragma once

#include <span>
#include <string>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage {

// One disk a pool is built from, as the layouts see it: a byte-addressed store with a volatile
// write cache. A write is only durable once a later flush() has returned. Implementations are safe
// to call from several threads at once. FileMemberDisk is the real one; FaultMemberDisk models a
// power cut and failing hardware for the crash tests.
class MemberDisk {
public:
    virtual ~MemberDisk() = default;

    // The path (or test name) of the disk, for messages.
    virtual std::string const& name() const = 0;
    virtual u64 size() const = 0;
    virtual ErrorOr<void> read(u64 offset, std::span<u8> buffer) = 0;
    virtual ErrorOr<void> write(u64 offset, std::span<u8 const> data) = 0;
    // Makes the range read as zeroes, exactly as a write of zeroes would (durable after a flush).
    // The default writes zero-filled buffers; a file zeroes the range in place, which copies nothing.
    virtual ErrorOr<void> write_zeroes(u64 offset, u64 length);
    virtual ErrorOr<void> flush() = 0;
    // Starts writing cached data back to the disk without waiting for it and without reporting
    // errors (the next flush() does): a flush that later runs under the pool lock then finds
    // less left to write. Does nothing where there is no cache to start on.
    virtual void write_back_cached() { }
};

} // namespace kasou::storage
