#pragma once

// Disk images of a small pool whose on-disk fields a test rewrites the way a disk brought from
// elsewhere could be crafted: every block rewritten is sealed again, so its checksum holds and only
// the pool's own validation stands between the fields and their use. Used by the unit tests of that
// validation and by the pool fuzz targets (no GoogleTest in here).

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/try.h"
#include "storage/pool/fault_member_disk.h"
#include "storage/pool/member_label.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage::test {

class CraftedPool {
public:
    static constexpr u64 DISK_SIZE = 768 * KiB; // small: the fuzz targets copy the disks for every input
    static constexpr u32 DISKS = 3;

    // A mirror of disks 0 and 1 and a linear disk 2; volume "data" (256 KiB, its first three
    // chunks written), its read-only snapshot "snap" and an empty volume "empty".
    static ErrorOr<CraftedPool> make()
    {
        std::vector<FaultMemberDisk*> raw;
        std::vector<std::unique_ptr<MemberDisk>> disks;
        for (u32 i = 0; i < DISKS; ++i) {
            auto disk = std::make_unique<FaultMemberDisk>("crafted" + std::to_string(i), DISK_SIZE);
            raw.push_back(disk.get());
            disks.push_back(std::move(disk));
        }
        std::vector<std::unique_ptr<MemberDisk>> mirror;
        mirror.push_back(std::move(disks[0]));
        mirror.push_back(std::move(disks[1]));
        auto pool = TRY(ThinPool::create("crafted", SegmentKind::Mirror, 0, std::move(mirror), false));
        std::vector<std::unique_ptr<MemberDisk>> linear;
        linear.push_back(std::move(disks[2]));
        TRY(pool->add_members(SegmentKind::Linear, 0, std::move(linear), false));
        TRY(pool->create_volume("data", 256 * KiB));
        {
            auto volume = TRY(pool->open_volume("data"));
            std::vector<u8> bytes(3 * CHUNK_SIZE);
            for (size_t i = 0; i < bytes.size(); ++i)
                bytes[i] = static_cast<u8>(i * 7 + 1);
            TRY(volume->write(0, bytes, false));
        }
        TRY(pool->snapshot("data", "snap", false));
        TRY(pool->create_volume("empty", 64 * KiB));
        TRY(pool->close());
        CraftedPool crafted;
        for (auto* disk : raw)
            crafted.images.push_back(disk->durable_image());
        return crafted;
    }

    std::vector<std::unique_ptr<MemberDisk>> disks() const
    {
        std::vector<std::unique_ptr<MemberDisk>> disks;
        for (u32 i = 0; i < images.size(); ++i)
            disks.push_back(std::make_unique<FaultMemberDisk>("crafted" + std::to_string(i), images[i]));
        return disks;
    }

    ErrorOr<std::shared_ptr<ThinPool>> open() const { return ThinPool::open(disks()); }

    // The error opening the pool gives, or "opened" when it opens.
    std::string open_error() const
    {
        auto pool = open();
        if (!pool)
            return pool.error().to_string();
        (void)(*pool)->close();
        return "opened";
    }

    Block raw_block(u32 member, u64 offset) const
    {
        Block block {};
        std::memcpy(block.data(), images[member].data() + offset, BLOCK_SIZE);
        return block;
    }

    void write_raw(u32 member, u64 offset, Block block, u64 magic)
    {
        seal_block(block, magic);
        std::memcpy(images[member].data() + offset, block.data(), BLOCK_SIZE);
    }

    // The newest of member 0's two superblock slots.
    Superblock superblock() const
    {
        Superblock slots[2] = { view_as<Superblock>(raw_block(0, SUPERBLOCK_OFFSET)), view_as<Superblock>(raw_block(0, SUPERBLOCK_OFFSET + BLOCK_SIZE)) };
        return slots[1].generation > slots[0].generation ? slots[1] : slots[0];
    }

    // Writes superblock, sealed, to both slots of every member.
    void set_superblock(Superblock const& superblock)
    {
        Block block {};
        std::memcpy(block.data(), &superblock, sizeof(superblock));
        for (u32 member = 0; member < images.size(); ++member) {
            for (u32 slot = 0; slot < 2; ++slot)
                write_raw(member, SUPERBLOCK_OFFSET + slot * BLOCK_SIZE, block, SUPERBLOCK_MAGIC);
        }
    }

    MemberLabel label(u32 member) const { return view_as<MemberLabel>(raw_block(member, LABEL_OFFSET)); }

    void set_label(u32 member, MemberLabel const& label)
    {
        Block block {};
        std::memcpy(block.data(), &label, sizeof(label));
        write_raw(member, LABEL_OFFSET, block, LABEL_MAGIC);
    }

    // Logical block numbers of the blocks that carry magic and a valid checksum.
    ErrorOr<std::vector<u64>> blocks_with(u64 magic) const
    {
        auto layout = TRY(PoolLayout::from_superblock(superblock(), disks()));
        std::vector<u64> found;
        for (u64 number = 0; number < layout.size() / BLOCK_SIZE; ++number) {
            Block block {};
            TRY(layout.read(number * BLOCK_SIZE, block));
            if (verify_block(block, magic, "block"))
                found.push_back(number);
        }
        return found;
    }

    ErrorOr<Block> read_block(u64 number) const
    {
        auto layout = TRY(PoolLayout::from_superblock(superblock(), disks()));
        Block block {};
        TRY(layout.read(number * BLOCK_SIZE, block));
        return block;
    }

    struct BlockWrite {
        u64 number;
        Block block;
        u64 magic;
    };
    // Seals each block with its magic and writes it at its logical block number on every copy.
    ErrorOr<void> write_blocks(std::vector<BlockWrite> writes)
    {
        auto layout = TRY(PoolLayout::from_superblock(superblock(), disks()));
        for (auto& write : writes) {
            seal_block(write.block, write.magic);
            TRY(layout.write_durable(write.number * BLOCK_SIZE, write.block));
        }
        for (u32 member = 0; member < images.size(); ++member)
            images[member] = static_cast<FaultMemberDisk&>(*layout.members()[member]->disk).durable_image();
        return {};
    }
    ErrorOr<void> write_block(u64 number, Block const& block, u64 magic) { return write_blocks({ { number, block, magic } }); }

    std::vector<std::vector<u8>> images;
};

} // namespace kasou::storage::test
