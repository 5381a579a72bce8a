#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "pool_test_support.h"
#include "base/unix_socket.h"
#include "storage/pool/pool_admin.h"
#include "storage/pool/pool_control.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {
namespace {

using test::pattern;

struct PoolRegistryTest : test::PoolFilesTest {
    // length bytes at offset of volume `name` of the pool handle holds.
    std::vector<u8> read_volume(PoolHandle& handle, std::string const& name, u64 offset, u64 length)
    {
        std::vector<u8> data(length);
        MUST(MUST(handle.volume(name))->read(offset, data));
        return data;
    }

    // What a member disk file holds after its header: where its segment keeps data.
    std::string member_data(std::string const& path) { return MUST(sys::read_file(path)).substr(MEMBER_HEADER_SIZE); }

    // Builds pool tank of two 8 MiB disks laid out as kind, fills three quarters of it, grows it
    // by two more disks with add_disks (`kasou pool add`), writes as much again (more than the
    // first segment could hold) and checks the layout, the space, the data, the new disks' share
    // of it and a re-import from the four disks alone.
    void expect_growth_by_a_segment_of_two_disks(SegmentKind kind)
    {
        constexpr u64 DISK_SIZE = 8 * MiB;
        constexpr u64 STRIPE = 64 * KiB;
        auto a = make_disk("a.img", DISK_SIZE);
        auto b = make_disk("b.img", DISK_SIZE);
        auto c = make_disk("c.img", DISK_SIZE);
        auto d = make_disk("d.img", DISK_SIZE);
        ASSERT_OK(create_pool(state, { "tank", kind, STRIPE, { a, b }, false }));
        // Each disk gives all but its header; a mirror segment holds one disk's worth, a striped one two.
        u64 segment_size = (DISK_SIZE - MEMBER_HEADER_SIZE) * (kind == SegmentKind::Mirror ? 1 : 2);
        u64 fill = segment_size / 4 * 3 / MiB * MiB;
        auto first = pattern(fill, 11);
        auto second = pattern(fill, 12);
        {
            auto handle = MUST(PoolHandle::open(state, "tank"));
            ASSERT_EQ(handle.pool().usage().size, segment_size);
            ASSERT_OK(handle.pool().create_volume("v", 4 * segment_size));
            ASSERT_OK(MUST(handle.volume("v"))->write(0, first, true));
        }

        ASSERT_OK(add_disks(state, "tank", { c, d }, false));
        EXPECT_EQ(MUST(Registry::find(state, "tank")).disks, (std::vector<std::string> { a, b, c, d }));
        {
            auto handle = MUST(PoolHandle::open(state, "tank"));
            auto const& segments = handle.pool().layout().segments();
            ASSERT_EQ(segments.size(), 2u);
            EXPECT_EQ(segments[1].kind, kind) << "the new disks form one segment of the pool's layout";
            EXPECT_EQ(segments[1].first_member, 2u);
            EXPECT_EQ(segments[1].width, 2u);
            EXPECT_EQ(segments[1].stripe_size, kind == SegmentKind::Striped ? STRIPE : 0);
            EXPECT_EQ(segments[1].start, segment_size);
            EXPECT_EQ(handle.pool().usage().size, 2 * segment_size) << "the pool grows by a segment like the first";
            ASSERT_OK(MUST(handle.volume("v"))->write(fill, second, true));
            EXPECT_EQ(read_volume(handle, "v", 0, fill), first);
            EXPECT_EQ(read_volume(handle, "v", fill, fill), second);
            auto faults = handle.pool().check();
            EXPECT_TRUE(faults.empty()) << test::describe(faults);
        }
        // The second write did not fit the first segment: the new disks hold part of it, striped
        // (different halves on each) or mirrored (the same bytes on both).
        auto on_c = member_data(c);
        auto on_d = member_data(d);
        EXPECT_NE(on_c, std::string(on_c.size(), '\0'));
        EXPECT_NE(on_d, std::string(on_d.size(), '\0'));
        if (kind == SegmentKind::Mirror)
            EXPECT_TRUE(on_c == on_d) << "the two new disks are copies of each other";
        else
            EXPECT_TRUE(on_c != on_d) << "the two new disks hold different stripes";

        // The four disks alone are the pool, whatever their order.
        std::filesystem::remove(state + "/pools.json");
        EXPECT_EQ(MUST(import_pool(state, { d, b, c, a })), "tank");
        auto handle = MUST(PoolHandle::open(state, "tank"));
        EXPECT_EQ(handle.pool().usage().size, 2 * segment_size);
        EXPECT_EQ(handle.pool().layout().segments().size(), 2u);
        EXPECT_EQ(read_volume(handle, "v", 0, fill), first);
        EXPECT_EQ(read_volume(handle, "v", fill, fill), second);
        auto faults = handle.pool().check();
        EXPECT_TRUE(faults.empty()) << test::describe(faults);
    }
};

TEST_F(PoolRegistryTest, SecondOpenerIsToldWhoHoldsThePool)
{
    Fd held = MUST(Registry::lock_pool(state, "tank"));
    auto second = Registry::lock_pool(state, "tank");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().to_string(), fmt::format("pool tank is in use by pid {}", ::getpid()));
    EXPECT_EQ(second.error().kind(), ErrorKind::Busy);
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
    EXPECT_EQ(missing.error().kind(), ErrorKind::NotFound);
}

TEST_F(PoolRegistryTest, CorruptRegistryIsReportedNotOverwritten)
{
    MUST(sys::mkdir_all(state, 0755));
    Fd fd = MUST(sys::open(state + "/pools.json", O_WRONLY | O_CREAT, 0644));
    MUST(sys::write_exact(fd.get(), "{oops", 5));
    auto result = Registry::list(state);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().to_string().find("is not a kasou pool registry"), std::string::npos);
    EXPECT_EQ(result.error().kind(), ErrorKind::Corrupt);
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

// Proves that `pool add` grows a 2-disk striped pool by a second striped segment of 2 disks
// (not two linear ones), and that data before and after, the space and a re-import are right.
TEST_F(PoolRegistryTest, StripedPoolGrowsByAStripedSegmentOfTwoDisks)
{
    expect_growth_by_a_segment_of_two_disks(SegmentKind::Striped);
}

// Proves that `pool add` grows a 2-way mirror by another mirrored pair, with the same checks.
TEST_F(PoolRegistryTest, MirrorGrowsByAnotherPair)
{
    expect_growth_by_a_segment_of_two_disks(SegmentKind::Mirror);
}

// Proves what `pool add` does with disks that do not make a segment of the pool's layout: a
// mirror refuses one disk or four (pairs and triples are added one call at a time) and stays as
// it was, leaving the disk unlabelled; a striped pool takes one disk as a linear segment.
TEST_F(PoolRegistryTest, AddTakesWhatTheLayoutAllowsAndRefusesTheRest)
{
    auto a = make_disk("a.img", 8 * MiB);
    auto b = make_disk("b.img", 8 * MiB);
    std::vector<std::string> spares;
    for (int i = 0; i < 4; ++i)
        spares.push_back(make_disk(fmt::format("spare{}.img", i), 8 * MiB));
    ASSERT_OK(create_pool(state, { "safe", SegmentKind::Mirror, 64 * KiB, { a, b }, false }));
    auto one = add_disks(state, "safe", { spares[0] }, false);
    ASSERT_FALSE(one);
    EXPECT_NE(one.error().to_string().find("a mirror has 2 or 3 copies, not 1"), std::string::npos) << one.error().to_string();
    auto four = add_disks(state, "safe", spares, false);
    ASSERT_FALSE(four);
    EXPECT_NE(four.error().to_string().find("not 4"), std::string::npos) << four.error().to_string();
    EXPECT_EQ(MUST(Registry::find(state, "safe")).disks, (std::vector<std::string> { a, b }));
    {
        auto handle = MUST(PoolHandle::open(state, "safe"));
        EXPECT_EQ(handle.pool().layout().segments().size(), 1u);
        EXPECT_EQ(handle.pool().layout().members().size(), 2u);
    }
    auto unlabelled = import_pool(state, { spares[0] });
    ASSERT_FALSE(unlabelled);
    EXPECT_NE(unlabelled.error().to_string().find("not a kasou pool member"), std::string::npos) << "a refused disk is left untouched";

    auto c = make_disk("c.img", 8 * MiB);
    auto d = make_disk("d.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "fast", SegmentKind::Striped, 64 * KiB, { c, d }, false }));
    ASSERT_OK(add_disks(state, "fast", { spares[1] }, false));
    auto handle = MUST(PoolHandle::open(state, "fast"));
    auto const& segments = handle.pool().layout().segments();
    ASSERT_EQ(segments.size(), 2u);
    EXPECT_EQ(segments[1].kind, SegmentKind::Linear);
    EXPECT_EQ(segments[1].width, 1u);
    EXPECT_EQ(handle.pool().usage().size, 3 * (8 * MiB - MEMBER_HEADER_SIZE));
    EXPECT_TRUE(handle.pool().check().empty());
}

// Proves that a pool held open (as by `kasou nbd serve`) grows through its control socket: add_disks
// from elsewhere reaches the holder, which adds the disk while a volume stays open and writable;
// malformed requests get an error answer and the holder goes on; the socket goes with the handle.
TEST_F(PoolRegistryTest, AHeldPoolGrowsThroughItsControlSocket)
{
    auto a = make_disk("a.img", 8 * MiB);
    auto b = make_disk("b.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "held", SegmentKind::Linear, 64 * KiB, { a }, false }));
    auto handle = MUST(PoolHandle::open(state, "held", PoolHandle::Control::Answer));
    ASSERT_OK(handle.pool().create_volume("v", 32 * MiB));
    auto volume = MUST(handle.volume("v"));
    u64 size_before = handle.pool().usage().size;

    auto ask = [&](std::string const& request) {
        Fd connection = MUST(connect_unix(pool_control_path(state, "held")));
        EXPECT_TRUE(sys::send(connection.get(), request.data(), request.size(), 0));
        EXPECT_TRUE(sys::shutdown(connection.get(), SHUT_WR));
        std::string answer(4096, '\0');
        auto n = MUST(sys::read(connection.get(), answer.data(), answer.size()));
        answer.resize(n);
        return answer;
    };
    for (auto const* bad : { "not json\n", "[1,2]\n", "{\"op\":\"remove\"}\n", "{\"op\":\"add\",\"disks\":[1]}\n",
             "{\"op\":\"add\",\"disks\":[]}\n", "{\"op\":\"add\",\"disks\":[\"/nonexistent/disk\"],\"force\":false}\n",
             "{\"op\":1}\n", "{\"op\":\"add\",\"disks\":[\"x\"],\"force\":\"yes\"}\n", "{\"op\":\"add\",\"disks\":\"x\"}\n",
             "{\"op\":\"add\",\"disks\":[\"/nonexistent/\xff\xfe\"]}\n" })
        EXPECT_NE(ask(bad).find("\"error\""), std::string::npos) << bad;
    EXPECT_EQ(handle.pool().layout().members().size(), 1u) << "no refused request changed the pool";

    auto added = add_disks(state, "held", { b }, false);
    ASSERT_TRUE(added) << added.error().to_string();
    EXPECT_EQ(handle.pool().layout().members().size(), 2u);
    EXPECT_EQ(handle.pool().usage().size, size_before + 8 * MiB - MEMBER_HEADER_SIZE);
    auto data = pattern(12 * MiB, 5);
    ASSERT_OK(volume->write(0, data, true)); // more than the first disk holds
    volume.reset();
    ASSERT_OK(handle.close());
    EXPECT_FALSE(std::filesystem::exists(pool_control_path(state, "held"))) << "the socket goes with the handle";
    EXPECT_EQ(MUST(Registry::find(state, "held")).disks.size(), 2u);
    auto reopened = MUST(PoolHandle::open(state, "held"));
    auto back = MUST(reopened.volume("v"));
    std::vector<u8> seen(data.size());
    ASSERT_OK(back->read(0, seen));
    EXPECT_TRUE(seen == data);
    EXPECT_TRUE(reopened.pool().check().empty());
}

// Proves that the control socket serves connections side by side: one that stays silent (it would
// be dropped only after a few seconds) does not hold up another, whose request is answered at once;
// a request of 64 KiB without its end gets an error answer naming the problem.
TEST_F(PoolRegistryTest, ASilentControlConnectionHoldsUpNoOther)
{
    auto a = make_disk("a.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "busy", SegmentKind::Linear, 64 * KiB, { a }, false }));
    auto handle = MUST(PoolHandle::open(state, "busy", PoolHandle::Control::Answer));
    auto const path = pool_control_path(state, "busy");
    Fd silent = MUST(connect_unix(path));

    auto ask = [&](std::string const& request) {
        Fd connection = MUST(connect_unix(path));
        EXPECT_TRUE(sys::send_all(connection.get(), std::array { iovec { const_cast<char*>(request.data()), request.size() } }.data(), 1));
        EXPECT_TRUE(sys::shutdown(connection.get(), SHUT_WR));
        std::string answer;
        char buffer[4096];
        while (auto n = MUST(sys::read(connection.get(), buffer, sizeof(buffer))))
            answer.append(buffer, n);
        return answer;
    };
    auto started = std::chrono::steady_clock::now();
    EXPECT_NE(ask("{\"op\":\"remove\"}\n").find("unknown request"), std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2)) << "answered while the silent connection waits";
    EXPECT_NE(ask(std::string(64 * 1024, ' ')).find("pool control message too long"), std::string::npos);
    ASSERT_OK(handle.close());
}

// Proves that an add the member or segment tables cannot take fails before any disk is labelled:
// the disk, even another pool's with --force, is left as it was.
TEST_F(PoolRegistryTest, AddBeyondTheTablesLeavesTheDiskUntouched)
{
    std::vector<std::string> disks;
    for (u32 i = 0; i < MAX_SEGMENTS; ++i)
        disks.push_back(make_disk(fmt::format("m{}.img", i), 2 * MiB));
    ASSERT_OK(create_pool(state, { "wide", SegmentKind::Linear, 64 * KiB, { disks[0] }, false }));
    for (u32 i = 1; i < MAX_SEGMENTS; ++i)
        ASSERT_OK(add_disks(state, "wide", { disks[i] }, false));
    auto other = make_disk("other.img", 2 * MiB);
    ASSERT_OK(create_pool(state, { "other", SegmentKind::Linear, 64 * KiB, { other }, false }));
    auto refused = add_disks(state, "wide", { other }, true);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().to_string().find("at most 32"), std::string::npos) << refused.error().to_string();
    auto handle = PoolHandle::open(state, "other");
    ASSERT_TRUE(handle) << "the other pool's disk lost its label: " << handle.error().to_string();
    EXPECT_TRUE(handle->pool().check().empty());
}

// Proves that `pool add --force` refuses a disk that is already a member of the same pool: taking
// it would relabel a live member and lay a second segment over its data.
TEST_F(PoolRegistryTest, AddRefusesADiskOfThePoolItselfEvenWithForce)
{
    auto a = make_disk("a.img", 8 * MiB);
    auto b = make_disk("b.img", 8 * MiB);
    auto c = make_disk("c.img", 8 * MiB);
    ASSERT_OK(create_pool(state, { "tank", SegmentKind::Striped, 64 * KiB, { a, b }, false }));
    auto data = pattern(4 * MiB, 21);
    {
        auto handle = MUST(PoolHandle::open(state, "tank"));
        ASSERT_OK(handle.pool().create_volume("v", 8 * MiB));
        ASSERT_OK(MUST(handle.volume("v"))->write(0, data, true));
    }
    auto added = add_disks(state, "tank", { b, c }, true);
    ASSERT_FALSE(added) << "a member was added to its own pool a second time";
    EXPECT_NE(added.error().to_string().find("already member 1 of pool tank"), std::string::npos) << added.error().to_string();
    EXPECT_EQ(MUST(Registry::find(state, "tank")).disks, (std::vector<std::string> { a, b }));
    std::filesystem::remove(state + "/pools.json");
    EXPECT_EQ(MUST(import_pool(state, { a, b })), "tank");
    auto handle = MUST(PoolHandle::open(state, "tank"));
    EXPECT_EQ(handle.pool().layout().segments().size(), 1u);
    EXPECT_EQ(read_volume(handle, "v", 0, data.size()), data);
    auto faults = handle.pool().check();
    EXPECT_TRUE(faults.empty()) << test::describe(faults);
}

} // namespace
} // namespace kasou::storage
