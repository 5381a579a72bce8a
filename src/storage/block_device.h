#pragma once

#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage {

// One run of a device's address space with a single allocation state, as NBD's base:allocation
// context and virtio-blk's discard/zeroes semantics need it.
struct Extent {
    u64 offset { 0 };
    u64 length { 0 };
    bool allocated { true }; // false: a hole (no storage behind it)
    bool zero { false };     // true: reads return zeroes
};

// One read or write of a batch given to BlockDevice::transfer_batch(); error is set when it failed.
struct BlockTransfer {
    bool write { false };
    u64 offset { 0 };
    std::span<u8> buffer; // read into, or written from
    bool fua { false };
    std::optional<Error> error;
};

// A virtual disk as the block front ends (NBD server, virtio-blk) see it: byte-addressed, sized,
// possibly read-only. Implementations (raw files, thin volumes) are safe to call from several
// threads at once; a write is durable once flush() or a write with fua=true has returned.
// Offsets and lengths are checked by the implementation: an access past size() fails with an error
// naming the range, never touches other data.
class BlockDevice {
public:
    virtual ~BlockDevice() = default;

    virtual u64 size() const = 0;
    virtual bool read_only() const = 0;
    // Smallest unit the device handles without read-modify-write (512 or 4096).
    virtual u32 logical_block_size() const { return 512; }

    virtual ErrorOr<void> read(u64 offset, std::span<u8> buffer) = 0;
    virtual ErrorOr<void> write(u64 offset, std::span<u8 const> data, bool fua) = 0;
    virtual ErrorOr<void> flush() = 0;
    // Releases storage behind the range; later reads of it return zeroes.
    virtual ErrorOr<void> discard(u64 offset, u64 length) = 0;
    // Makes the range read as zeroes; may_unmap allows releasing storage as discard() does.
    virtual ErrorOr<void> write_zeroes(u64 offset, u64 length, bool may_unmap) = 0;
    // Describes [offset, offset + length) as consecutive extents covering the whole range.
    virtual ErrorOr<std::vector<Extent>> block_status(u64 offset, u64 length) = 0;
    // Carries out reads and writes that do not depend on one another, possibly at the same time
    // and in any order, and records each one's outcome in its error. The default runs them one
    // after another through read() and write(); devices that can overlap I/O override it.
    virtual void transfer_batch(std::span<BlockTransfer> transfers);
};

} // namespace kasou::storage
