#pragma once

#include <atomic>

#include <memory>
#include <string>

#include "base/fd.h"
#include "storage/block_device.h"
#include "storage/io/disk_identity.h"
#include "storage/io/io_engine_pool.h"

namespace kasou::storage {

struct RawFileOptions {
    bool read_only { false };
    // O_DIRECT: bypass the page cache. Offsets, lengths and buffers must then be aligned to
    // logical_block_size() (4096); misaligned requests fail with EINVAL.
    bool direct { false };
    IoEngineKind engine { IoEngineKind::Sync };
    // open() claims the disk with an OFD lock on the whole file, held while the device is open: an
    // exclusive one to write, a shared one to read. A disk another open holds in a conflicting
    // way (a running pool's member, an NBD export, a VM's disk, in this process or another, or an
    // image QEMU has open with its image locking) is refused with EBUSY instead of being opened.
    // Off only where the caller holds the claim itself.
    bool lock { true };
};

// A BlockDevice over a raw image file or a block device; byte for byte, no format. Data moves
// through an IoEnginePool (one engine per concurrent caller), so it is safe to use from many
// threads; with io_uring, buffered writes without FUA run on the calling thread instead. Space
// is managed with the file system: discard punches holes, write-zeroes uses ZERO_RANGE (or
// punches holes when unmapping is allowed), block status follows SEEK_DATA / SEEK_HOLE. On a block device: BLKDISCARD, BLKZEROOUT, and everything reads as allocated.
// The size is fixed when opened.
class RawFileDevice final : public BlockDevice {
public:
    static ErrorOr<std::shared_ptr<RawFileDevice>> open(std::string const& path, RawFileOptions const& options);
    // Takes over an open descriptor (its access mode must allow what options ask for), claimed
    // already by the caller if it is to be (options.lock is not looked at).
    static ErrorOr<std::shared_ptr<RawFileDevice>> adopt(Fd fd, std::string name, RawFileOptions const& options);
    // The claim open() takes (see RawFileOptions::lock), for a caller that opens the file itself:
    // EBUSY, naming name, when a conflicting claim is held.
    static ErrorOr<void> claim(int fd, std::string const& name, bool read_only);

    std::string const& name() const { return m_name; }
    DiskIdentity identity() const { return m_identity; }
    u64 size() const override { return m_size; }
    bool read_only() const override { return m_options.read_only; }
    u32 logical_block_size() const override { return m_options.direct ? 4096 : 512; }

    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override;
    ErrorOr<void> write(u64 offset, std::span<u8 const> data, bool fua) override;
    ErrorOr<void> flush() override;
    // Whether the file system reports no data in the range (SEEK_DATA): holes, and unwritten
    // extents with nothing cached over them, which both read as zeroes. False for block devices.
    bool is_hole(u64 offset, u64 length) const;
    ErrorOr<void> discard(u64 offset, u64 length) override;
    ErrorOr<void> write_zeroes(u64 offset, u64 length, bool may_unmap) override;
    ErrorOr<std::vector<Extent>> block_status(u64 offset, u64 length) override;
    // One engine lease for the whole batch: with io_uring, every transfer goes to the kernel in
    // one submission and they run at once.
    void transfer_batch(std::span<BlockTransfer> transfers) override;

private:
    RawFileDevice(Fd fd, std::string name, DiskIdentity identity, u64 size, bool is_block_device, RawFileOptions const& options);

    ErrorOr<void> check_range(u64 offset, u64 length, char const* what) const;
    ErrorOr<void> check_writable(char const* what) const;
    ErrorOr<void> check_alignment(u64 offset, u64 length, void const* buffer) const;
    // The checks a read or a write must pass before it reaches the engine.
    ErrorOr<void> check_transfer(bool write, u64 offset, std::span<u8 const> buffer) const;
    // Appends the IoRequests that carry one transfer (pieces an IoRequest can hold).
    void add_requests(IoOpcode opcode, u64 offset, u8* buffer, u64 length, bool fua, u64 user_data, std::vector<IoRequest>& batch) const;
    // Writes zero-filled buffers over the range (when the file system cannot zero it in place).
    ErrorOr<void> write_zero_buffers(u64 offset, u64 length);
    // Transfers through the engine in pieces an IoRequest can carry.
    ErrorOr<void> transfer(IoOpcode opcode, u64 offset, u8* buffer, u64 length, bool fua);
    // Whether a read or write runs on m_inline_engines (buffered writes without FUA when the
    // configured engine is io_uring) rather than m_engines.
    bool runs_inline(bool write, bool fua) const;
    // For a buffered read bound for io_uring alone or in a small batch: reads what the page cache
    // holds on the calling thread (RWF_NOWAIT) and shrinks the request to what is left. Returns
    // whether nothing is.
    bool read_cached(IoRequest& request);
    // Runs the requests of transfer_batch on one of the pools and records each transfer's error.
    void run_batch(IoEnginePool& engines, std::span<IoRequest const> batch, std::span<BlockTransfer> transfers);

    Fd m_fd;
    std::string m_name;
    DiskIdentity m_identity;
    u64 m_size;
    bool m_is_block_device;
    RawFileOptions m_options;
    mutable IoEnginePool m_engines;
    IoEnginePool m_inline_engines; // synchronous: see runs_inline
    // Whether read_cached() is tried: buffered io_uring reads on a file whose file system takes
    // RWF_NOWAIT (cleared the first time it is refused).
    std::atomic<bool> m_reads_cached;
};

} // namespace kasou::storage
