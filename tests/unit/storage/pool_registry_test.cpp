#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/sys.h"
#include "base/try.h"
#include "pool_test_support.h"
#include "storage/pool/pool_admin.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {
namespace {

struct PoolRegistryTest : ::testing::Test {
    std::string dir;
    std::string state;

    void SetUp() override
    {
        dir = MUST(sys::make_temp_dir("/tmp/kasou-pool-test-XXXXXX"));
        state = dir + "/state";
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    std::string make_disk(std::string const& name, u64 size)
    {
        std::string path = dir + "/" + name;
        Fd fd = MUST(sys::open(path, O_RDWR | O_CREAT | O_TRUNC, 0644));
        MUST(sys::ftruncate(fd.get(), size));
        return path;
    }
};

TEST_F(PoolRegistryTest, SecondOpenerIsToldWhoHoldsThePool)
{
    Fd held = MUST(Registry::lock_pool(state, "tank"));
    auto second = Registry::lock_pool(state, "tank");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().to_string(), fmt::format("pool tank is in use by pid {}", ::getpid()));
    held.reset();
    EXPECT_TRUE(Registry::lock_pool(state, "tank"));
}

TEST_F(PoolRegistryTest, RecordsRoundTripAndUnknownNamesAreExplained)
{
    ASSERT_OK(Registry::modify(state, [](std::vector<PoolRecord>& records) -> ErrorOr<void> {
        records.push_back({ "tank", "1234", { "/dev/a", "/dev/b" } });
        return {};
    }));
    auto record = MUST(Registry::find(state, "tank"));
    EXPECT_EQ(record.disks, (std::vector<std::string> { "/dev/a", "/dev/b" }));
    auto missing = Registry::find(state, "pond");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().to_string().find("no pool named 'pond'"), std::string::npos);
    EXPECT_NE(missing.error().to_string().find("known: tank"), std::string::npos);
}

TEST_F(PoolRegistryTest, CorruptRegistryIsReportedNotOverwritten)
{
    MUST(sys::mkdir_all(state, 0755));
    Fd fd = MUST(sys::open(state + "/pools.json", O_WRONLY | O_CREAT, 0644));
    MUST(sys::write_exact(fd.get(), "{oops", 5));
    auto result = Registry::list(state);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("is not a kasou pool registry"), std::string::npos);
    EXPECT_FALSE(Registry::modify(state, [](auto&) -> ErrorOr<void> { return {}; }));
    EXPECT_EQ(MUST(sys::read_file(state + "/pools.json")), "{oops");
}

TEST_F(PoolRegistryTest, PoolLifecycleOnFiles)
{
    auto a = make_disk("a.img", 32 * MiB);
    auto b = make_disk("b.img", 32 * MiB);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Mirror, 64 * KiB, { a, b }, false }));
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        auto again = PoolHandle::open(state, "tank");
        ASSERT_FALSE(again);
        EXPECT_NE(again.error().to_string().find(fmt::format("pool tank is in use by pid {}", ::getpid())), std::string::npos);
        ASSERT_OK(handle.pool().create_volume("disk0", 8 * MiB));
        EXPECT_EQ(handle.volume_names(), std::vector<std::string> { "disk0" });
        auto volume = MUST(handle.volume("disk0"));
        EXPECT_EQ(MUST(handle.volume("disk0")), volume);
        ASSERT_OK(volume->write(4096, test::pattern(8192, 1), true));
        ASSERT_OK(handle.close());
        EXPECT_FALSE(volume->read(0, std::span<u8>()).has_value() && volume->write(0, test::pattern(512, 2), false).has_value())
            << "a volume of a closed pool refuses I/O";
    }
    // The registry can be rebuilt from the disks alone.
    std::filesystem::remove(state + "/pools.json");
    EXPECT_EQ(MUST(import_pool(state, { b, a })), "tank");
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        auto volume = MUST(handle.volume("disk0"));
        std::vector<u8> data(8192);
        ASSERT_OK(volume->read(4096, data));
        EXPECT_EQ(data, test::pattern(8192, 1));
        EXPECT_TRUE(handle.pool().check().empty());
    }
    auto refused = destroy_pool(state, "tank", false);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("still has 1 volume"), std::string::npos);
    ASSERT_OK(destroy_pool(state, "tank", true));
    EXPECT_FALSE(Registry::find(state, "tank"));
    auto gone = import_pool(state, { a });
    ASSERT_FALSE(gone);
    EXPECT_NE(gone.error().to_string().find("not a kasou pool member"), std::string::npos);
}

TEST_F(PoolRegistryTest, MirrorRunsDegradedWithoutADiskAndIsRepaired)
{
    auto a = make_disk("a.img", 16 * MiB);
    auto b = make_disk("b.img", 16 * MiB);
    auto spare = make_disk("spare.img", 20 * MiB);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Mirror, 64 * KiB, { a, b }, false }));
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        ASSERT_OK(handle.pool().create_volume("v", 4 * MiB));
        ASSERT_OK(MUST(handle.volume("v"))->write(0, test::pattern(4 * MiB, 3), true));
    }
    std::filesystem::remove(a);
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        auto faults = handle.pool().check();
        ASSERT_EQ(faults.size(), 1u);
        EXPECT_NE(faults[0].find("has failed"), std::string::npos);
        std::vector<u8> data(4 * MiB);
        ASSERT_OK(MUST(handle.volume("v"))->read(0, data));
        EXPECT_EQ(data, test::pattern(4 * MiB, 3));
        ASSERT_OK(MUST(handle.volume("v"))->write(0, test::pattern(64 * KiB, 4), true));
    }
    EXPECT_EQ(MUST(repair_pool(state, "tank", a, spare, {})), 1u);
    auto record = MUST(Registry::find(state, "tank"));
    EXPECT_EQ(record.disks, (std::vector<std::string> { b, spare }));
    std::filesystem::remove(b);
    auto handle = MUST(PoolHandle::open(state, "tank"));
    std::vector<u8> data(64 * KiB);
    ASSERT_OK(MUST(handle.volume("v"))->read(0, data));
    EXPECT_EQ(data, test::pattern(64 * KiB, 4)) << "the replacement alone holds everything";
}

TEST_F(PoolRegistryTest, MirrorCopyThatComesBackIsResynchronized)
{
    auto a = make_disk("a.img", 16 * MiB);
    auto b = make_disk("b.img", 16 * MiB);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Mirror, 64 * KiB, { a, b }, false }));
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        ASSERT_OK(handle.pool().create_volume("v", 2 * MiB));
    }
    std::filesystem::rename(a, dir + "/away.img");
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        ASSERT_OK(MUST(handle.volume("v"))->write(0, test::pattern(2 * MiB, 5), true));
    }
    std::filesystem::rename(dir + "/away.img", a);
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        EXPECT_EQ(handle.pool().layout().members()[0]->state, MemberState::Failed) << "a stale copy must not be trusted";
    }
    EXPECT_EQ(MUST(repair_pool(state, "tank", "", "", {})), 1u);
    std::filesystem::remove(b);
    auto handle = MUST(PoolHandle::open(state, "tank"));
    std::vector<u8> data(2 * MiB);
    ASSERT_OK(MUST(handle.volume("v"))->read(0, data));
    EXPECT_EQ(data, test::pattern(2 * MiB, 5)) << "the resynchronized copy alone holds the writes it missed";
}

} // namespace
} // namespace kasou::storage
