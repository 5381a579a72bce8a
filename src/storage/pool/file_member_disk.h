#pragma once

#include <memory>
#include <string>

#include "storage/io/raw_file_device.h"
#include "storage/pool/member_disk.h"

namespace kasou::storage {

// A member disk backed by a regular file or a block device. Data moves through the I/O engines
// of src/storage/io (a RawFileDevice underneath), so the pool never calls pread itself; flush() is
// the engine's fdatasync, which makes the host's write cache the volatile cache MemberDisk
// describes. The disk is claimed while the object lives (RawFileOptions::lock): a disk another
// process has open, a member of a pool it serves say, is refused.
class FileMemberDisk final : public MemberDisk {
public:
    // A disk held elsewhere gives EBUSY, naming the pool its label names when it has one.
    static ErrorOr<std::unique_ptr<FileMemberDisk>> open(std::string const& path, IoEngineKind engine = IoEngineKind::Sync);

    std::string const& name() const override { return m_path; }
    std::optional<DiskIdentity> identity() const override { return m_device->identity(); }
    u64 size() const override { return m_device->size(); }
    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override;
    ErrorOr<void> write(u64 offset, std::span<u8 const> data) override;
    // FALLOC_FL_ZERO_RANGE in a file (its blocks become unwritten extents: no data is copied, and
    // unlike a punched hole nothing is freed and reallocated), BLKZEROOUT on a block device,
    // zero-filled writes where neither works.
    ErrorOr<void> write_zeroes(u64 offset, u64 length) override;
    ErrorOr<void> flush() override;
    // A write with RWF_DSYNC: the file system syncs that range only.
    ErrorOr<void> write_durable(u64 offset, std::span<u8 const> data) override;
    // SEEK_DATA finds no data in the range, on a file system known to report it faithfully (ext4,
    // XFS, btrfs, tmpfs); false elsewhere and on block devices. SEEK_DATA also calls an unwritten
    // extent a hole before the FALLOC_FL_ZERO_RANGE that made it is durable: the pool is safe
    // with that only because it zeroes a chunk in place when the chunk was not a hole, marks the
    // commit that maps it as one that flushes the members first, and runs one commit at a time.
    bool is_durable_hole(u64 offset, u64 length) override;

private:
    // The EBUSY error of opening a held disk, naming the pool on it if its label can be read.
    static Error explain_busy(std::string const& path, Error const& busy);

    FileMemberDisk(std::string path, std::shared_ptr<RawFileDevice> device, bool holes_reported)
        : m_path(std::move(path))
        , m_device(std::move(device))
        , m_holes_reported(holes_reported)
    {
    }

    std::string m_path;
    std::shared_ptr<RawFileDevice> m_device;
    bool m_holes_reported; // the file lives on a file system whose SEEK_DATA is trusted
};

} // namespace kasou::storage
