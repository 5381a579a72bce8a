// The rules a pool's disks and names follow, checked on real files: one disk under several names
// is one disk, a disk a pool holds is refused to every other writer, the state directory must be
// usable before a disk is written, a pool must hold data after its metadata, and names may be
// written in any script but hold no control character, space or '/'.

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "pool_test_support.h"
#include "storage/io/raw_file_device.h"
#include "storage/pool/disk_set.h"
#include "storage/pool/file_member_disk.h"
#include "storage/pool/format.h"
#include "storage/pool/pool_admin.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {
namespace {

struct PoolDiskRulesTest : test::PoolFilesTest {
    // Whether the disk's first MEMBER_HEADER_SIZE bytes are still zero (nothing was labelled).
    bool untouched(std::string const& path) { return MUST(sys::read_file(path)).substr(0, MEMBER_HEADER_SIZE) == std::string(MEMBER_HEADER_SIZE, '\0'); }
};

void expect_error(ErrorOr<void> const& result, std::string const& text)
{
    ASSERT_FALSE(result) << "accepted; expected an error saying: " << text;
    EXPECT_NE(result.error().to_string().find(text), std::string::npos) << result.error().to_string();
}

// Proves that disks are compared by what they are, not by the path given: ./x, a hard link and a
// symbolic link are refused as a second copy, and a refused create writes nothing.
TEST_F(PoolDiskRulesTest, OneDiskUnderTwoNamesIsRefused)
{
    auto a = make_disk("a.img", 8 * MiB);
    auto b = make_disk("b.img", 8 * MiB);
    ASSERT_EQ(::link(a.c_str(), (dir + "/hard.img").c_str()), 0);
    ASSERT_EQ(::symlink(a.c_str(), (dir + "/soft.img").c_str()), 0);
    for (auto const& other : { dir + "/./a.img", dir + "/hard.img", dir + "/soft.img", dir + "/../" + std::filesystem::path(dir).filename().string() + "/a.img" }) {
        expect_error(check_distinct_disks({ a, b, other }), fmt::format("disks {} and {} are the same disk", a, other));
        for (auto layout : { SegmentKind::Linear, SegmentKind::Mirror })
            expect_error(create_pool(state, { "tank", layout, 64 * KiB, { a, other }, true }), "are the same disk");
    }
    EXPECT_TRUE(check_distinct_disks({ a, b }));
    EXPECT_TRUE(untouched(a));
    EXPECT_TRUE(untouched(b));
    EXPECT_FALSE(Registry::find(state, "tank"));
}

// Proves that a pool's members are compared by identity when it grows, is imported or has a
// member replaced: a current member under another name is refused.
TEST_F(PoolDiskRulesTest, AMemberUnderAnotherNameIsRefusedByAddImportAndReplace)
{
    auto a = make_disk("a.img", 8 * MiB);
    auto b = make_disk("b.img", 8 * MiB);
    auto c = make_disk("c.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Mirror, 64 * KiB, { a, b }, false }));
    std::string a_link = dir + "/a-link.img";
    ASSERT_EQ(::link(a.c_str(), a_link.c_str()), 0);
    expect_error(add_disks(state, "tank", { c, a_link }, true), fmt::format("disk {} is already member 0 of pool tank", a_link));
    EXPECT_TRUE(untouched(c));
    auto imported = import_pool(state, { a, b, a_link });
    ASSERT_FALSE(imported);
    EXPECT_NE(imported.error().to_string().find("are the same disk"), std::string::npos) << imported.error().to_string();
    std::filesystem::remove(b);
    auto replaced = repair_pool(state, "tank", b, a_link, {});
    ASSERT_FALSE(replaced) << "a healthy member was laid over the failed one's place";
    EXPECT_NE(replaced.error().to_string().find("already member 0 of pool tank"), std::string::npos) << replaced.error().to_string();
    EXPECT_EQ(MUST(repair_pool(state, "tank", b, c, {})), 1u);
}

// Proves that a pool open in one place claims its members: creating a pool on one of them (even
// with force, even under another state directory, even through a hard link), importing them, and
// opening them as raw images for writing or reading are all refused with the pool's name, and the
// pool's data is intact; once it closes, the disk is free again.
TEST_F(PoolDiskRulesTest, AMemberOfAnOpenPoolIsRefusedToEveryOtherOpener)
{
    auto a = make_disk("a.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Linear, 64 * KiB, { a }, false }));
    std::string link = dir + "/a-link.img";
    ASSERT_EQ(::link(a.c_str(), link.c_str()), 0);
    auto data = test::pattern(1 * MiB, 5);
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        ASSERT_OK(handle.pool().create_volume("v", 4 * MiB));
        ASSERT_OK(MUST(handle.volume("v"))->write(0, data, true));
        std::string elsewhere = dir + "/elsewhere";
        for (auto const& path : { a, link }) {
            auto created = create_pool(elsewhere, { "stolen", SegmentKind::Linear, 64 * KiB, { path }, true });
            ASSERT_FALSE(created) << "a member of an open pool was overwritten through " << path;
            EXPECT_EQ(created.error().code(), EBUSY);
            EXPECT_NE(created.error().to_string().find(fmt::format("disk {} is in use by a running pool: it is a member of pool 'tank'", path)),
                std::string::npos)
                << created.error().to_string();
            EXPECT_FALSE(import_pool(elsewhere, { path }));
            for (bool read_only : { false, true }) {
                auto raw = RawFileDevice::open(path, { .read_only = read_only });
                ASSERT_FALSE(raw) << path << " opened as a raw image while its pool is open";
                EXPECT_EQ(raw.error().code(), EBUSY);
            }
        }
        ASSERT_OK(handle.close());
    }
    auto handle = MUST(PoolHandle::open(state, "tank"));
    std::vector<u8> back(data.size());
    ASSERT_OK(MUST(handle.volume("v"))->read(0, back));
    EXPECT_EQ(back, data);
    EXPECT_TRUE(handle.pool().check().empty());
    ASSERT_OK(handle.close());
    EXPECT_TRUE(RawFileDevice::open(a, {})) << "the pool's claim outlived it";
}

// Proves that the state directory is checked before anything is written: empty, relative or
// impossible to create, it is refused by name and the disks stay untouched.
TEST_F(PoolDiskRulesTest, AnUnusableStateDirectoryIsRefusedBeforeAnyDiskIsWritten)
{
    auto a = make_disk("a.img", 8 * MiB);
    auto resolved = resolve_state_dir("");
    ASSERT_FALSE(resolved);
    EXPECT_NE(resolved.error().to_string().find("the state directory is empty"), std::string::npos);
    EXPECT_EQ(MUST(resolve_state_dir("/var/lib/kasou/")), "/var/lib/kasou");
    EXPECT_EQ(MUST(resolve_state_dir("state/./x/..")), (std::filesystem::current_path() / "state").string());
    expect_error(create_pool("", { "tank", SegmentKind::Linear, 64 * KiB, { a }, false }), "the state directory is empty");
    expect_error(create_pool("relative/state", { "tank", SegmentKind::Linear, 64 * KiB, { a }, false }), "'relative/state' is not an absolute path");
    make_disk("file", 0);
    expect_error(create_pool(dir + "/file/state", { "tank", SegmentKind::Linear, 64 * KiB, { a }, false }),
        fmt::format("state directory {}/file/state cannot be used", dir));
    EXPECT_FALSE(Registry::list(""));
    EXPECT_TRUE(untouched(a));
}

// Proves that a pool that could not hold one chunk of data after the space it keeps for metadata
// is refused before any disk is labelled, naming the sizes, and that the smallest one allowed
// holds a volume with data.
TEST_F(PoolDiskRulesTest, APoolTooSmallForDataIsRefusedNamingTheSizes)
{
    u64 smallest = MEMBER_HEADER_SIZE + ThinPool::minimum_chunks() * CHUNK_SIZE;
    auto tiny = make_disk("tiny.img", smallest - CHUNK_SIZE);
    expect_error(create_pool(state, { "tank", SegmentKind::Linear, 64 * KiB, { tiny }, false }),
        fmt::format("pool tank would be too small: its disks leave {} bytes after their headers, and a pool needs at least {}",
            smallest - CHUNK_SIZE - MEMBER_HEADER_SIZE, smallest - MEMBER_HEADER_SIZE));
    EXPECT_TRUE(untouched(tiny));
    auto m1 = make_disk("m1.img", smallest - CHUNK_SIZE);
    auto m2 = make_disk("m2.img", 64 * MiB);
    expect_error(create_pool(state, { "tank", SegmentKind::Mirror, 64 * KiB, { m1, m2 }, false }), "would be too small");
    EXPECT_TRUE(untouched(m1));
    EXPECT_TRUE(untouched(m2));

    auto enough = make_disk("enough.img", smallest);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Linear, 64 * KiB, { enough }, false }));
    auto handle = MUST(PoolHandle::open(state, "tank"));
    ASSERT_OK(handle.pool().create_volume("v", 1 * MiB));
    ASSERT_OK(MUST(handle.volume("v"))->write(0, test::pattern(CHUNK_SIZE, 3), true));
}

// Proves that names may be written in any script and come back byte for byte, while control
// characters, spaces, '/' and bytes that are not UTF-8 are refused, each named, as is a disk path
// the registry cannot record.
TEST_F(PoolDiskRulesTest, NamesBeyondAsciiAreKeptAndControlsRefused)
{
    for (std::string name : { "tänk", "ボリューム", "данные-1", "disk.0+a_b", "ε" })
        EXPECT_TRUE(validate_name(name, "volume")) << name;
    expect_error(validate_name("a\x07z", "volume"), "volume name contains the control character U+0007");
    expect_error(validate_name("a\u0085z", "volume"), "control character U+0085");
    expect_error(validate_name("a\x7f", "pool"), "control character U+007F");
    expect_error(validate_name("a/b", "pool"), "pool name 'a/b' contains '/'");
    expect_error(validate_name("a b", "pool"), "contains ' '");
    expect_error(validate_name("a\xff", "pool"), "pool name is not valid UTF-8 (byte 0xff at offset 1)");
    expect_error(validate_name("\xc3", "pool"), "not valid UTF-8");
    expect_error(validate_name("\xc0\xaf", "pool"), "not valid UTF-8"); // an overlong '/'
    expect_error(validate_name("\xed\xa0\x80", "pool"), "not valid UTF-8"); // a surrogate
    expect_error(validate_name(std::string(34, 'a') + "ボリュームボリューム", "pool"), "longer than 63 bytes");

    auto disk = make_disk("tänk.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "tänk", SegmentKind::Linear, 64 * KiB, { disk }, false }));
    auto handle = MUST(PoolHandle::open(state, "tänk"));
    ASSERT_OK(handle.pool().create_volume("ボリューム", 1 * MiB));
    EXPECT_EQ(handle.volume_names(), (std::vector<std::string> { "ボリューム" }));
    expect_error(handle.pool().create_volume("ボリューム", 1 * MiB), "pool tänk already has a volume 'ボリューム'");
    EXPECT_EQ(handle.pool().create_volume("ボリューム", 1 * MiB).error().kind(), ErrorKind::AlreadyExists);
    EXPECT_EQ(handle.pool().remove("none").error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(handle.pool().volume_info("none").error().kind(), ErrorKind::NotFound);

    // The registry is JSON: a disk path that is not UTF-8 is refused before the disk is written.
    auto bytes = make_disk("bad\xff.img", 8 * MiB);
    expect_error(create_pool(state, { "bytes", SegmentKind::Linear, 64 * KiB, { bytes }, false }),
        fmt::format("disk path {} is not valid UTF-8 (byte 0xff at offset {})", bytes, bytes.size() - 5));
    EXPECT_TRUE(untouched(bytes));
}

} // namespace
} // namespace kasou::storage
