#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "io_test_support.h"
#include "storage/io/aligned_buffer.h"
#include "storage/io/raw_file_device.h"

namespace kasou::storage {
namespace {

using testing::ScratchFile;

class RawFileDeviceTest : public ::testing::TestWithParam<IoEngineKind> {
protected:
    std::shared_ptr<RawFileDevice> open(std::string const& path, bool read_only = false, bool direct = false)
    {
        return MUST(RawFileDevice::open(path, { .read_only = read_only, .direct = direct, .engine = GetParam() }));
    }
};

std::vector<u8> filled(size_t size, u8 value) { return std::vector<u8>(size, value); }

bool all_equal(std::span<u8 const> bytes, u8 value)
{
    return std::all_of(bytes.begin(), bytes.end(), [&](u8 b) { return b == value; });
}

TEST_P(RawFileDeviceTest, ReadsBackWhatWasWritten)
{
    ScratchFile file(4 * MiB);
    auto device = open(file.path());
    EXPECT_EQ(device->size(), 4 * MiB);
    EXPECT_FALSE(device->read_only());
    ASSERT_TRUE(device->write(1000, filled(70000, 0x42), false));
    ASSERT_TRUE(device->write(4 * MiB - 512, filled(512, 0x43), true));
    ASSERT_TRUE(device->flush());
    std::vector<u8> back(70000);
    ASSERT_TRUE(device->read(1000, back));
    EXPECT_TRUE(all_equal(back, 0x42));
    std::vector<u8> tail(512);
    ASSERT_TRUE(device->read(4 * MiB - 512, tail));
    EXPECT_TRUE(all_equal(tail, 0x43));
}

// Reads of data partly in the page cache and partly not (evicted with POSIX_FADV_DONTNEED, on
// file systems that honour it): io_uring reads take the cached part on the calling thread and
// the rest through the engine, and every byte lands where it belongs.
TEST_P(RawFileDeviceTest, ReadsHalfCachedDataIntact)
{
    ScratchFile file(4 * MiB);
    std::vector<u8> pattern(4 * MiB);
    for (size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<u8>(i % 251);
    {
        Fd fd = MUST(sys::open(file.path(), O_RDWR));
        MUST(sys::pwrite_exact(fd.get(), pattern.data(), pattern.size(), 0));
        MUST(sys::fdatasync(fd.get()));
        ASSERT_EQ(::posix_fadvise(fd.get(), 2 * MiB, 2 * MiB, POSIX_FADV_DONTNEED), 0);
    }
    auto device = open(file.path(), true);
    std::vector<u8> back(2 * MiB + 4096);
    ASSERT_TRUE(device->read(1 * MiB, back));
    EXPECT_TRUE(std::equal(back.begin(), back.end(), pattern.begin() + 1 * MiB));

    // Small batches try the page cache too, large ones go to the engine whole.
    Fd fd = MUST(sys::open(file.path(), O_RDONLY));
    ASSERT_EQ(::posix_fadvise(fd.get(), 2 * MiB, 2 * MiB, POSIX_FADV_DONTNEED), 0);
    std::vector<u8> first(4096), second(2 * MiB), third(8192), fourth(4096), fifth(1 * MiB);
    std::vector<BlockTransfer> pair { { .write = false, .offset = 4096, .buffer = first, .fua = false, .error = {} },
        { .write = false, .offset = 1 * MiB + 512, .buffer = second, .fua = false, .error = {} } };
    std::vector<BlockTransfer> triple { { .write = false, .offset = 3 * MiB, .buffer = third, .fua = false, .error = {} },
        { .write = false, .offset = 1 * MiB, .buffer = fourth, .fua = false, .error = {} },
        { .write = false, .offset = 2 * MiB + 4096, .buffer = fifth, .fua = false, .error = {} } };
    device->transfer_batch(pair);
    ASSERT_EQ(::posix_fadvise(fd.get(), 2 * MiB, 2 * MiB, POSIX_FADV_DONTNEED), 0);
    device->transfer_batch(triple);
    pair.insert(pair.end(), triple.begin(), triple.end());
    for (auto const& transfer : pair) {
        ASSERT_FALSE(transfer.error) << transfer.error->to_string();
        EXPECT_TRUE(std::equal(transfer.buffer.begin(), transfer.buffer.end(), pattern.begin() + static_cast<long>(transfer.offset)))
            << "read at " << transfer.offset;
    }
}

TEST_P(RawFileDeviceTest, RefusesRangesPastTheEndWithoutTouchingData)
{
    ScratchFile file(1 * MiB);
    auto device = open(file.path());
    ASSERT_TRUE(device->write(1 * MiB - 4096, filled(4096, 0x11), false));
    std::vector<u8> buffer(8192, 0x99);
    auto write = device->write(1 * MiB - 4096, buffer, false);
    ASSERT_FALSE(write);
    EXPECT_EQ(write.error().code(), EINVAL);
    EXPECT_NE(write.error().to_string().find("beyond the end"), std::string::npos);
    // Offset + length overflowing 64 bits is a range error too, not a wrap-around.
    EXPECT_FALSE(device->read(~u64(0) - 100, buffer));
    EXPECT_FALSE(device->discard(512, ~u64(0)));
    std::vector<u8> back(4096);
    ASSERT_TRUE(device->read(1 * MiB - 4096, back));
    EXPECT_TRUE(all_equal(back, 0x11));
}

TEST_P(RawFileDeviceTest, ReadOnlyRefusesEveryChange)
{
    ScratchFile file(64 * KiB);
    auto device = open(file.path(), true);
    EXPECT_TRUE(device->read_only());
    auto write = device->write(0, filled(512, 1), false);
    ASSERT_FALSE(write);
    EXPECT_EQ(write.error().code(), EPERM);
    EXPECT_FALSE(device->discard(0, 4096));
    EXPECT_FALSE(device->write_zeroes(0, 4096, false));
    std::vector<u8> back(512);
    EXPECT_TRUE(device->read(0, back));
}

// transfer_batch() gives each transfer its own outcome; a bad one (past the end, or a write to a
// read-only device) fails alone and touches nothing.
TEST_P(RawFileDeviceTest, TransferBatchGivesEachTransferItsOutcome)
{
    ScratchFile file(1 * MiB);
    auto device = open(file.path());
    auto a = filled(4096, 0xA1);
    auto b = filled(8192, 0xB2);
    auto beyond = filled(4096, 0xEE);
    std::vector<BlockTransfer> writes {
        { .write = true, .offset = 0, .buffer = a, .fua = false, .error = {} },
        { .write = true, .offset = 1 * MiB - 2048, .buffer = beyond, .fua = false, .error = {} },
        { .write = true, .offset = 64 * KiB, .buffer = b, .fua = true, .error = {} },
    };
    device->transfer_batch(writes);
    EXPECT_FALSE(writes[0].error);
    ASSERT_TRUE(writes[1].error);
    EXPECT_NE(writes[1].error->to_string().find("beyond the end"), std::string::npos);
    EXPECT_FALSE(writes[2].error);

    std::vector<u8> back_a(4096), back_b(8192), tail(2048);
    std::vector<BlockTransfer> reads {
        { .write = false, .offset = 0, .buffer = back_a, .fua = false, .error = {} },
        { .write = false, .offset = 64 * KiB, .buffer = back_b, .fua = false, .error = {} },
        { .write = false, .offset = 1 * MiB - 2048, .buffer = tail, .fua = false, .error = {} },
    };
    device->transfer_batch(reads);
    for (auto const& read : reads)
        EXPECT_FALSE(read.error);
    EXPECT_EQ(back_a, a);
    EXPECT_EQ(back_b, b);
    EXPECT_TRUE(all_equal(tail, 0)) << "the refused write past the end left the last bytes alone";

    device.reset(); // a writable open claims the file alone
    auto read_only = open(file.path(), true);
    std::vector<u8> again(4096);
    std::vector<BlockTransfer> mixed {
        { .write = true, .offset = 0, .buffer = b, .fua = false, .error = {} },
        { .write = false, .offset = 0, .buffer = again, .fua = false, .error = {} },
    };
    read_only->transfer_batch(mixed);
    ASSERT_TRUE(mixed[0].error);
    EXPECT_EQ(mixed[0].error->code(), EPERM);
    EXPECT_FALSE(mixed[1].error);
    EXPECT_EQ(again, a);
}

TEST_P(RawFileDeviceTest, DiscardMakesAHoleThatReadsAsZeroes)
{
    ScratchFile file(1 * MiB);
    auto device = open(file.path());
    ASSERT_TRUE(device->write(0, filled(1 * MiB, 0x55), false));
    ASSERT_TRUE(device->discard(256 * KiB, 256 * KiB));
    std::vector<u8> back(1 * MiB);
    ASSERT_TRUE(device->read(0, back));
    EXPECT_TRUE(all_equal({ back.data(), 256 * KiB }, 0x55));
    EXPECT_TRUE(all_equal({ back.data() + 256 * KiB, 256 * KiB }, 0));
    EXPECT_TRUE(all_equal({ back.data() + 512 * KiB, 512 * KiB }, 0x55));

    auto extents = MUST(device->block_status(0, 1 * MiB));
    ASSERT_EQ(extents.size(), 3u);
    EXPECT_TRUE(extents[0].allocated);
    EXPECT_EQ(extents[1].offset, 256 * KiB);
    EXPECT_EQ(extents[1].length, 256 * KiB);
    EXPECT_FALSE(extents[1].allocated);
    EXPECT_TRUE(extents[1].zero);
    EXPECT_TRUE(extents[2].allocated);
    EXPECT_EQ(extents[2].offset + extents[2].length, 1 * MiB);
}

TEST_P(RawFileDeviceTest, WriteZeroesWithoutUnmapKeepsTheSpaceAllocated)
{
    ScratchFile file(1 * MiB);
    auto device = open(file.path());
    ASSERT_TRUE(device->write(0, filled(1 * MiB, 0x66), false));
    ASSERT_TRUE(device->write_zeroes(64 * KiB, 128 * KiB, false));
    std::vector<u8> back(128 * KiB);
    ASSERT_TRUE(device->read(64 * KiB, back));
    EXPECT_TRUE(all_equal(back, 0));
    auto extents = MUST(device->block_status(0, 1 * MiB));
    for (auto const& extent : extents)
        EXPECT_TRUE(extent.allocated) << "extent at " << extent.offset;
    // With unmapping allowed, the same range becomes a hole.
    ASSERT_TRUE(device->write_zeroes(64 * KiB, 128 * KiB, true));
    extents = MUST(device->block_status(64 * KiB, 128 * KiB));
    ASSERT_EQ(extents.size(), 1u);
    EXPECT_FALSE(extents[0].allocated);
}

TEST_P(RawFileDeviceTest, WriteZeroesOverAHoleLeavesItAHole)
{
    ScratchFile file(1 * MiB); // sparse: all hole
    auto device = open(file.path());
    ASSERT_TRUE(device->write(512 * KiB, filled(4 * KiB, 0x77), false));
    ASSERT_TRUE(device->flush());
    auto blocks = [&] {
        struct stat status {};
        EXPECT_EQ(::stat(file.path().c_str(), &status), 0);
        return status.st_blocks;
    };
    auto before = blocks();
    ASSERT_TRUE(device->write_zeroes(64 * KiB, 128 * KiB, false));
    EXPECT_EQ(blocks(), before) << "zeroing a hole allocated space";
    // A range that holds data only in part is zeroed, the data included.
    ASSERT_TRUE(device->write_zeroes(256 * KiB, 512 * KiB, false));
    std::vector<u8> back(4 * KiB);
    ASSERT_TRUE(device->read(512 * KiB, back));
    EXPECT_TRUE(all_equal(back, 0));
}

TEST_P(RawFileDeviceTest, BlockStatusOfASparseFileCoversExactlyTheRange)
{
    ScratchFile file(8 * MiB);
    auto device = open(file.path());
    ASSERT_TRUE(device->write(2 * MiB, filled(64 * KiB, 1), false));
    auto extents = MUST(device->block_status(1 * MiB, 3 * MiB));
    ASSERT_EQ(extents.size(), 3u);
    u64 position = 1 * MiB;
    for (auto const& extent : extents) {
        EXPECT_EQ(extent.offset, position);
        position += extent.length;
    }
    EXPECT_EQ(position, 4 * MiB);
    EXPECT_FALSE(extents[0].allocated);
    EXPECT_TRUE(extents[1].allocated);
    EXPECT_EQ(extents[1].offset, 2 * MiB);
    EXPECT_FALSE(extents[2].allocated);
}

TEST_P(RawFileDeviceTest, DirectIoNeedsAlignment)
{
    ScratchFile file(1 * MiB);
    auto opened = RawFileDevice::open(file.path(), { .read_only = false, .direct = true, .engine = GetParam() });
    if (!opened && opened.error().code() == EINVAL)
        GTEST_SKIP() << "the file system of TMPDIR does not support O_DIRECT";
    auto device = MUST(std::move(opened));
    EXPECT_EQ(device->logical_block_size(), 4096u);
    AlignedBuffer buffer;
    auto block = MUST(buffer.reserve(8192));
    std::fill(block.begin(), block.end(), 0x7e);
    ASSERT_TRUE(device->write(8192, block, false));
    std::fill(block.begin(), block.end(), 0);
    ASSERT_TRUE(device->read(8192, block));
    EXPECT_TRUE(all_equal(block, 0x7e));
    auto misaligned = device->read(100, block.subspan(0, 4096));
    ASSERT_FALSE(misaligned);
    EXPECT_EQ(misaligned.error().code(), EINVAL);
    EXPECT_NE(misaligned.error().to_string().find("O_DIRECT"), std::string::npos);
}

TEST_P(RawFileDeviceTest, ManyThreadsAtOnce)
{
    ScratchFile file(4 * MiB);
    auto device = open(file.path());
    std::vector<std::thread> threads;
    std::atomic<int> failures { 0 };
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            auto value = static_cast<u8>(t + 1);
            for (int i = 0; i < 64; ++i) {
                u64 offset = (static_cast<u64>(t) * 64 + i) * 16 * KiB;
                std::vector<u8> data(16 * KiB, value);
                std::vector<u8> back(16 * KiB);
                if (!device->write(offset, data, false) || !device->read(offset, back) || back != data)
                    ++failures;
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    EXPECT_EQ(failures.load(), 0);
}

TEST_P(RawFileDeviceTest, RejectsWhatIsNotAFileOrBlockDevice)
{
    auto opened = RawFileDevice::open("/tmp", { .read_only = true, .direct = false, .engine = GetParam() });
    ASSERT_FALSE(opened);
}

// Proves that an open claims its disk: a second writer is refused by whatever name it uses (a hard
// link, a symbolic link), even in the same process; readers share; closing releases.
TEST_P(RawFileDeviceTest, AWriterClaimsTheDiskByEveryName)
{
    ScratchFile file(1 * MiB);
    std::string hard = file.path() + ".hard";
    std::string soft = file.path() + ".soft";
    ASSERT_EQ(::link(file.path().c_str(), hard.c_str()), 0);
    ASSERT_EQ(::symlink(file.path().c_str(), soft.c_str()), 0);
    {
        auto writer = open(file.path());
        for (auto const& name : { file.path(), hard, soft }) {
            for (bool read_only : { false, true }) {
                auto second = RawFileDevice::open(name, { .read_only = read_only, .direct = false, .engine = GetParam() });
                ASSERT_FALSE(second) << name << (read_only ? " opened for reading" : " opened for writing") << " while a writer holds it";
                EXPECT_EQ(second.error().code(), EBUSY);
                EXPECT_EQ(second.error().kind(), ErrorKind::Busy);
                EXPECT_NE(second.error().to_string().find(name + " is in use"), std::string::npos) << second.error().to_string();
            }
        }
        EXPECT_EQ(MUST(disk_identity(hard)), writer->identity());
        EXPECT_EQ(MUST(disk_identity(soft)), writer->identity());
    }
    {
        auto reader = open(hard, true);
        auto another_reader = open(soft, true);
        auto writer = RawFileDevice::open(file.path(), { .read_only = false, .direct = false, .engine = GetParam() });
        ASSERT_FALSE(writer) << "a writer opened a disk that readers hold";
        EXPECT_EQ(writer.error().code(), EBUSY);
    }
    EXPECT_TRUE(RawFileDevice::open(file.path(), { .read_only = false, .direct = false, .engine = GetParam() })) << "closing released nothing";
    ::unlink(hard.c_str());
    ::unlink(soft.c_str());
}

INSTANTIATE_TEST_SUITE_P(Engines, RawFileDeviceTest, ::testing::Values(IoEngineKind::Sync, IoEngineKind::Uring),
    [](auto const& info) { return std::string(io_engine_kind_name(info.param)); });

} // namespace
} // namespace kasou::storage
