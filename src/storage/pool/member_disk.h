#pragma once

#include <optional>
#include <span>
#include <string>

#include "base/error.h"
#include "base/types.h"
#include "storage/io/disk_identity.h"

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
    // Which disk this is, whatever name it was opened by; nullopt for a disk that is no file.
    virtual std::optional<DiskIdentity> identity() const;
    virtual u64 size() const = 0;
    virtual ErrorOr<void> read(u64 offset, std::span<u8> buffer) = 0;
    virtual ErrorOr<void> write(u64 offset, std::span<u8 const> data) = 0;
    // Makes the range read as zeroes, exactly as a write of zeroes would (durable after a flush).
    // The default writes zero-filled buffers; a file zeroes the range in place, which copies nothing.
    virtual ErrorOr<void> write_zeroes(u64 offset, u64 length);
    virtual ErrorOr<void> flush() = 0;
    // A write that is durable when it returns, leaving other cached writes cached (FUA). The
    // default writes and flushes everything.
    virtual ErrorOr<void> write_durable(u64 offset, std::span<u8 const> data);
    // True when the range reads as zeroes now and will after any crash: nothing was ever written
    // there, or what was is durably gone. A chunk allocated there needs no flush before the
    // metadata that maps it: what a crash can take of the data written to it leaves zeroes, which
    // is what the unmapped range read before. The default knows nothing and says false.
    virtual bool is_durable_hole(u64 offset, u64 length);
};

} // namespace kasou::storage
