#include "virtio/blk/blk_device.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "base/try.h"
#include "virtio/blk/blk_request.h"

namespace kasou::virtio::blk {

namespace {

// struct virtio_blk_config offsets (virtio 1.2, 5.2.4).
constexpr u64 CONFIG_CAPACITY = 0x00;
constexpr u64 CONFIG_SEG_MAX = 0x0C;
constexpr u64 CONFIG_BLK_SIZE = 0x14;
constexpr u64 CONFIG_NUM_QUEUES = 0x22;
constexpr u64 CONFIG_MAX_DISCARD_SECTORS = 0x24;
constexpr u64 CONFIG_MAX_DISCARD_SEG = 0x28;
constexpr u64 CONFIG_DISCARD_ALIGNMENT = 0x2C;
constexpr u64 CONFIG_MAX_WRITE_ZEROES_SECTORS = 0x30;
constexpr u64 CONFIG_MAX_WRITE_ZEROES_SEG = 0x34;
constexpr u64 CONFIG_WRITE_ZEROES_MAY_UNMAP = 0x38;
constexpr u64 CONFIG_SIZE = 0x3C;
constexpr u32 MAX_RANGE_SECTORS = 0x3F'FFFF; // 2 GiB - 512 per range

void put(std::array<u8, CONFIG_SIZE>& config, u64 offset, u64 value, size_t size)
{
    for (size_t i = 0; i < size; ++i)
        config[offset + i] = static_cast<u8>(value >> (8 * i));
}

// Whether [sector, sector + bytes / 512) lies inside a disk of `size` bytes.
bool inside(u64 sector, u64 bytes, u64 size)
{
    u64 sectors = size / SECTOR_SIZE;
    return sector <= sectors && bytes / SECTOR_SIZE <= sectors - sector;
}

} // namespace

BlkDevice::BlkDevice(std::shared_ptr<storage::BlockDevice> disk, BlkOptions options)
    : m_disk(std::move(disk))
    , m_options(std::move(options))
{
    m_options.queues = std::max<u16>(1, m_options.queues);
}

u64 BlkDevice::device_features() const
{
    u64 features = F_SEG_MAX | F_BLK_SIZE | F_FLUSH;
    if (m_options.queues > 1)
        features |= F_MQ;
    if (read_only())
        features |= F_RO;
    else
        features |= F_DISCARD | F_WRITE_ZEROES;
    return features;
}

void BlkDevice::read_config(u64 offset, std::span<u8> data)
{
    std::array<u8, CONFIG_SIZE> config {};
    put(config, CONFIG_CAPACITY, m_disk->size() / SECTOR_SIZE, 8);
    put(config, CONFIG_SEG_MAX, m_options.queue_size - 2u, 4);
    put(config, CONFIG_BLK_SIZE, m_disk->logical_block_size(), 4);
    put(config, CONFIG_NUM_QUEUES, m_options.queues, 2);
    put(config, CONFIG_MAX_DISCARD_SECTORS, MAX_RANGE_SECTORS, 4);
    put(config, CONFIG_MAX_DISCARD_SEG, MAX_SEGMENTS, 4);
    put(config, CONFIG_DISCARD_ALIGNMENT, m_disk->logical_block_size() / SECTOR_SIZE, 4);
    put(config, CONFIG_MAX_WRITE_ZEROES_SECTORS, MAX_RANGE_SECTORS, 4);
    put(config, CONFIG_MAX_WRITE_ZEROES_SEG, MAX_SEGMENTS, 4);
    put(config, CONFIG_WRITE_ZEROES_MAY_UNMAP, 1, 1);
    copy_config(config, offset, data);
}

std::pair<u8, u32> BlkDevice::execute(BlkRequest const& request)
{
    u64 const size = m_disk->size();
    auto failed = [&](Error const& error) {
        spdlog::warn("virtio-blk: {}", error.to_string());
        return std::pair<u8, u32> { STATUS_IOERR, 1 };
    };
    switch (request.type) {
    case TYPE_IN:
    case TYPE_OUT: {
        bool is_write = request.type == TYPE_OUT;
        if (request.data_bytes % SECTOR_SIZE != 0 || !inside(request.sector, request.data_bytes, size) || (is_write && read_only()))
            return { STATUS_IOERR, 1 };
        u64 offset = request.sector * SECTOR_SIZE;
        for (auto const& piece : request.data) {
            auto result = is_write ? m_disk->write(offset, piece, false) : m_disk->read(offset, piece);
            if (!result)
                return failed(result.error());
            offset += piece.size();
        }
        u32 written = is_write ? 1 : static_cast<u32>(request.data_bytes + 1);
        return { STATUS_OK, written };
    }
    case TYPE_FLUSH:
        if (auto result = m_disk->flush(); !result)
            return failed(result.error());
        return { STATUS_OK, 1 };
    case TYPE_GET_ID: {
        u8 id[ID_BYTES] = {};
        std::memcpy(id, m_options.serial.data(), std::min(m_options.serial.size(), ID_BYTES));
        u64 copied = 0;
        for (auto const& piece : request.data) {
            u64 count = std::min<u64>(piece.size(), ID_BYTES - copied);
            std::memcpy(piece.data(), id + copied, count);
            copied += count;
        }
        return { STATUS_OK, static_cast<u32>(copied + 1) };
    }
    case TYPE_DISCARD:
    case TYPE_WRITE_ZEROES: {
        if (read_only() || !request.ranges_valid)
            return { STATUS_IOERR, 1 };
        for (auto const& range : request.ranges) {
            u64 bytes = u64 { range.sectors } * SECTOR_SIZE;
            if (range.sectors > MAX_RANGE_SECTORS || !inside(range.sector, bytes, size) || (range.flags & ~u32 { 1 }))
                return { STATUS_IOERR, 1 };
            auto result = request.type == TYPE_DISCARD ? m_disk->discard(range.sector * SECTOR_SIZE, bytes)
                                                       : m_disk->write_zeroes(range.sector * SECTOR_SIZE, bytes, range.flags & 1);
            if (!result)
                return failed(result.error());
        }
        return { STATUS_OK, 1 };
    }
    default:
        return { STATUS_UNSUPPORTED, 1 };
    }
}

bool BlkDevice::batchable(BlkRequest const& request) const
{
    if (request.type != TYPE_IN && request.type != TYPE_OUT)
        return false;
    bool is_write = request.type == TYPE_OUT;
    return request.data_bytes % SECTOR_SIZE == 0 && inside(request.sector, request.data_bytes, m_disk->size()) && !(is_write && read_only());
}

ErrorOr<void> BlkDevice::complete_batch(SplitQueue& queue)
{
    if (m_pending.empty())
        return {};
    m_transfers.clear();
    for (auto const& entry : m_pending) {
        u64 offset = entry.request.sector * SECTOR_SIZE;
        for (auto const& piece : entry.request.data) {
            m_transfers.push_back({ .write = entry.request.type == TYPE_OUT, .offset = offset, .buffer = piece, .fua = false, .error = {} });
            offset += piece.size();
        }
    }
    m_disk->transfer_batch(m_transfers);
    size_t next = 0;
    ErrorOr<void> pushed;
    for (auto const& entry : m_pending) {
        u8 status = STATUS_OK;
        for (size_t i = 0; i < entry.request.data.size(); ++i, ++next) {
            if (m_transfers[next].error && status == STATUS_OK) {
                spdlog::warn("virtio-blk: {}", m_transfers[next].error->to_string());
                status = STATUS_IOERR;
            }
        }
        *entry.request.status = status;
        u32 written = entry.request.type == TYPE_IN && status == STATUS_OK ? static_cast<u32>(entry.request.data_bytes + 1) : 1;
        if (pushed)
            pushed = queue.push(entry.head, written);
    }
    m_pending.clear();
    m_transfers.clear();
    return pushed;
}

ErrorOr<void> BlkDevice::process(u16, SplitQueue& queue)
{
    // Reads and writes are gathered and handed to the disk together (one io_uring submission for a
    // raw file); any other request first completes what was gathered, so a flush covers every
    // write the driver saw completed before it, and then runs on its own.
    for (;;) {
        auto chain = queue.pop();
        if (!chain || !*chain) {
            TRY(complete_batch(queue));
            if (!chain)
                return tl::unexpected(chain.error());
            return {};
        }
        auto request = BlkRequest::parse(**chain);
        if (!request) {
            // A chain the driver must never send: answer what was gathered, then report it.
            TRY(complete_batch(queue));
            return tl::unexpected(request.error());
        }
        if (batchable(*request)) {
            m_pending.push_back({ (*chain)->head, std::move(*request) });
            if (m_pending.size() >= MAX_BATCH)
                TRY(complete_batch(queue));
            continue;
        }
        TRY(complete_batch(queue));
        auto [status, written] = execute(*request);
        *request->status = status;
        TRY(queue.push((*chain)->head, written));
    }
}

} // namespace kasou::virtio::blk
