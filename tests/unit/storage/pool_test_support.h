#pragma once

// Builds pools over in-memory fault-injecting member disks for the pool tests, and checks a pool
// opened after a crash against the PoolModel of what it may hold.

#include <fcntl.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"
#include "pool_workload.h"
#include "storage/pool/fault_member_disk.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage::test {

// The disks of a pool under test: the pool owns them, the test keeps pointers to fail them and to
// cut their power.
struct FaultDisks {
    std::vector<FaultMemberDisk*> disks;

    std::vector<std::unique_ptr<MemberDisk>> make(u32 count, u64 size, std::string const& prefix = "disk")
    {
        std::vector<std::unique_ptr<MemberDisk>> owned;
        for (u32 i = 0; i < count; ++i) {
            auto disk = std::make_unique<FaultMemberDisk>(prefix + std::to_string(disks.size()), size);
            disks.push_back(disk.get());
            owned.push_back(std::move(disk));
        }
        return owned;
    }

    // The disks as a power cut now would leave them, as new disks (in a new FaultDisks).
    std::vector<std::unique_ptr<MemberDisk>> power_cut(std::mt19937_64& random, FaultDisks& after) const
    {
        std::vector<std::unique_ptr<MemberDisk>> owned;
        for (auto* disk : disks) {
            auto copy = std::make_unique<FaultMemberDisk>(disk->name(), disk->power_cut(random));
            after.disks.push_back(copy.get());
            owned.push_back(std::move(copy));
        }
        return owned;
    }
};

// Runs scenario(seed) for count seeds from first_seed on, stopping at the first that fails.
template<typename Scenario>
void run_crash_points(int count, u64 first_seed, Scenario const& scenario)
{
    for (int i = 0; i < count && !::testing::Test::HasFatalFailure() && !::testing::Test::HasNonfatalFailure(); ++i)
        scenario(first_seed + static_cast<u64>(i));
}

inline std::vector<u8> pattern(size_t size, u64 seed)
{
    std::vector<u8> data(size);
    std::mt19937_64 random(seed);
    for (auto& byte : data)
        byte = static_cast<u8>(random());
    return data;
}

inline std::string describe(std::vector<std::string> const& faults)
{
    std::string text;
    for (auto const& fault : faults)
        text += fault + "\n";
    return text;
}

// Each volume's name and size as the pool lists them (PoolModel::shape of what is there).
inline std::map<std::string, u64> shape_of(ThinPool& pool)
{
    std::map<std::string, u64> sizes;
    for (auto const& info : pool.volumes())
        sizes[info.name] = info.size;
    return sizes;
}

// The first of the states a crashed pool may be in whose volumes and sizes the pool shows, or null.
inline PoolModel const* matching_state(ThinPool& pool, std::vector<PoolModel> const& states)
{
    auto shape = shape_of(pool);
    for (auto const& state : states) {
        if (state.shape() == shape)
            return &state;
    }
    return nullptr;
}

// Checks a pool opened after a crash against model: the offline check is clean (but for members
// reported failed, when degraded_allowed), the volumes are the model's with its sizes and modes,
// every snapshot holds exactly what it was taken with, and every sector of a writable volume
// (clones included) holds its durable data or data written since.
inline void expect_pool_matches(ThinPool& pool, PoolModel const& model, bool degraded_allowed, std::string const& context)
{
    for (auto const& fault : pool.check()) {
        if (!(degraded_allowed && fault.find("has failed: the pool is degraded") != std::string::npos))
            ADD_FAILURE() << "check: " << fault << "\n" << context;
    }
    EXPECT_EQ(shape_of(pool), model.shape()) << "volumes and sizes\n" << context;
    for (auto const& [name, expected] : model.volumes()) {
        auto info = pool.volume_info(name);
        if (!info || info->size != expected.content.current().size())
            continue; // reported above
        EXPECT_EQ(info->read_only(), expected.read_only) << name << "\n" << context;
        std::vector<u8> actual(info->size);
        auto read = MUST(pool.open_volume(name))->read(0, actual);
        if (!read) {
            ADD_FAILURE() << "reading " << name << ": " << read.error().to_string() << "\n" << context;
            continue;
        }
        if (expected.read_only) {
            EXPECT_TRUE(actual == expected.content.durable()) << "snapshot " << name << " changed\n" << context;
            continue;
        }
        auto bad = expected.content.first_bad_sector(actual);
        EXPECT_EQ(bad, -1) << "volume " << name << " sector " << bad << " holds neither durable nor later data\n" << context;
    }
}

// A fixture for tests on real files: a fresh temporary directory (removed afterwards) holding
// the state directory and the disk files the test makes.
struct PoolFilesTest : ::testing::Test {
    std::string dir;
    std::string state;

    void SetUp() override
    {
        dir = MUST(sys::make_temp_dir("/tmp/kasou-pool-test-XXXXXX"));
        state = dir + "/state";
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    // A sparse file of size bytes named name in dir; its path.
    std::string make_disk(std::string const& name, u64 size)
    {
        std::string path = dir + "/" + name;
        Fd fd = MUST(sys::open(path, O_RDWR | O_CREAT | O_TRUNC, 0644));
        MUST(sys::ftruncate(fd.get(), size));
        return path;
    }
};

} // namespace kasou::storage::test

#define ASSERT_OK(expression)                                          \
    do {                                                               \
        auto&& _result = (expression);                                 \
        ASSERT_TRUE(_result) << #expression << ": " << _result.error().to_string(); \
    } while (0)
