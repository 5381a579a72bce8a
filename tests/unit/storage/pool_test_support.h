#pragma once

// Builds pools over in-memory fault-injecting member disks for the pool tests.

#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

} // namespace kasou::storage::test

#define ASSERT_OK(expression)                                          \
    do {                                                               \
        auto&& _result = (expression);                                 \
        ASSERT_TRUE(_result) << #expression << ": " << _result.error().to_string(); \
    } while (0)
