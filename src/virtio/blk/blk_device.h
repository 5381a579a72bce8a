#pragma once

#include <memory>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "virtio/blk/blk_request.h"
#include "virtio/virtio_device.h"

namespace kasou::virtio::blk {

// Feature bits (virtio 1.2, 5.2.3).
constexpr u64 F_SEG_MAX = 1ull << 2;
constexpr u64 F_RO = 1ull << 5;
constexpr u64 F_BLK_SIZE = 1ull << 6;
constexpr u64 F_FLUSH = 1ull << 9;
constexpr u64 F_MQ = 1ull << 12;
constexpr u64 F_DISCARD = 1ull << 13;
constexpr u64 F_WRITE_ZEROES = 1ull << 14;

struct BlkOptions {
    bool read_only { false };
    std::string serial;   // GET_ID answer, at most 20 bytes
    u16 queues { 1 };     // request queues (VIRTIO_BLK_F_MQ when more than one)
    u16 queue_size { 256 };
};

// virtio-blk over one of the storage layer's BlockDevices (a raw file or a thin volume): read,
// write, flush (which commits a volume's metadata), discard (which frees a volume's chunks),
// write-zeroes, get-id, read-only, several queues. Requests run on the transport's I/O thread:
// the reads and writes found in one pass over a queue go to the disk as one batch (concurrent on
// a raw file through io_uring) and complete together; a request outside the disk or of a size that is not whole sectors is answered with IOERR, an
// unknown type with UNSUPP, and the VM goes on.
class BlkDevice final : public VirtioDevice {
public:
    BlkDevice(std::shared_ptr<storage::BlockDevice> disk, BlkOptions options);

    u16 device_type() const override { return DEVICE_BLOCK; }
    u64 device_features() const override;
    u16 queue_count() const override { return m_options.queues; }
    u16 queue_max_size() const override { return m_options.queue_size; }
    void read_config(u64 offset, std::span<u8> data) override;
    ErrorOr<void> process(u16 index, SplitQueue& queue) override;

private:
    // A read or write popped from the queue and not yet answered.
    struct Pending {
        u16 head;
        BlkRequest request;
    };
    // Reads and writes gathered per batch at most (bounded memory for a huge queue).
    static constexpr size_t MAX_BATCH = 64;

    // Carries out one parsed request; returns the status byte and how many bytes it wrote into
    // the driver's buffers (data plus status).
    std::pair<u8, u32> execute(BlkRequest const& request);
    // Whether a request is a read or write that can join a batch (valid range, writable disk).
    bool batchable(BlkRequest const& request) const;
    // Runs the gathered requests (m_pending) as one batch on the disk and answers each.
    ErrorOr<void> complete_batch(SplitQueue& queue);
    bool read_only() const { return m_options.read_only || m_disk->read_only(); }

    std::shared_ptr<storage::BlockDevice> m_disk;
    BlkOptions m_options;
    // process()'s batch and its transfers: members so that their memory is reused from pass to
    // pass (process() runs on the I/O thread only). Both are empty between passes.
    std::vector<Pending> m_pending;
    std::vector<storage::BlockTransfer> m_transfers;
};

} // namespace kasou::virtio::blk
