#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "storage/pool/member_disk.h"

namespace kasou::storage {

// An in-memory member disk for the crash tests. It models a disk with a volatile write cache:
// reads see every write, but only flushed writes are sure to survive power_cut(), which keeps a
// random subset of the unflushed ones, some of them torn at 512-byte sector boundaries. It fails
// on demand: fail_writes_after(n) makes the (n+1)-th and later writes return EIO, set_failed(true)
// makes every call return EIO, as a dead disk does. share_power() puts disks on one power supply
// that fails after a number of writes and flushes among them: later calls do nothing, so
// power_cut() then shows the disks as they were at that moment, even in the middle of a commit.
class FaultMemberDisk final : public MemberDisk {
public:
    static constexpr u64 SECTOR_SIZE = 512;

    FaultMemberDisk(std::string name, u64 size);
    // A disk whose durable content is image (the state after a power cut).
    FaultMemberDisk(std::string name, std::vector<u8> image);

    std::string const& name() const override { return m_name; }
    u64 size() const override { return m_durable.size(); }
    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override;
    ErrorOr<void> write(u64 offset, std::span<u8 const> data) override;
    ErrorOr<void> flush() override;
    // Durable at once: also what a power cut keeps, whatever older unflushed writes it keeps.
    ErrorOr<void> write_durable(u64 offset, std::span<u8 const> data) override;
    // Zeroes on the platter, and no unflushed write over them.
    bool is_durable_hole(u64 offset, u64 length) override;

    // What the platter holds after a power cut now: every flushed write, and each unflushed write
    // with probability 1/2, a quarter of those torn (a random subset of their sectors).
    std::vector<u8> power_cut(std::mt19937_64& random) const;

    // What the platter holds after a power cut that kept none of the unflushed writes.
    std::vector<u8> durable_image() const;

    void fail_writes_after(u64 count);
    // Calls left before the power fails, shared by all disks given the same counter.
    void share_power(std::shared_ptr<std::atomic<i64>> calls_left) { m_power = std::move(calls_left); }
    void set_failed(bool failed) { m_failed = failed; }
    // Runs hook once, at the start of the next flush (before the flush itself, holding no lock of
    // the disk): a test's way to act while a commit waits for its flush.
    void before_next_flush(std::function<void()> hook);

private:
    struct PendingWrite {
        u64 offset;
        std::vector<u8> data;
    };
    ErrorOr<void> check(u64 offset, u64 length, char const* what) const;
    // False once the shared power supply has failed: the call must have no effect.
    bool powered();
    // The checks and the failures every write goes through, then the write into what reads see;
    // false (nothing written) once the power has failed. Needs m_mutex.
    ErrorOr<bool> accept_write(u64 offset, std::span<u8 const> data);

    std::string m_name;
    mutable std::mutex m_mutex;
    std::vector<u8> m_durable; // what survives any power cut
    std::vector<u8> m_current; // what reads see
    std::vector<PendingWrite> m_pending;
    std::atomic<bool> m_failed { false };
    std::atomic<u64> m_writes { 0 };
    std::atomic<u64> m_write_limit { ~u64 { 0 } };
    std::shared_ptr<std::atomic<i64>> m_power;
    std::mutex m_hook_mutex;
    std::function<void()> m_before_flush;
};

} // namespace kasou::storage
