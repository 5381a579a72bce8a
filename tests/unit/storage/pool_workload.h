#pragma once

// A deterministic random workload for the crash tests: the same seed gives the same operations,
// so a test can replay what a killed process was doing and know what each volume must hold.

#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/types.h"

namespace kasou::storage::test {

constexpr u64 SECTOR = 512;

enum class OpKind {
    Write,
    FuaWrite,
    Flush,
    Discard,
    WriteZeroes,
    Snapshot, // of volume "a", named name; commits
};

struct Op {
    OpKind kind { OpKind::Write };
    u64 offset { 0 };
    u64 length { 0 };
    u64 data_seed { 0 };
    std::string name;
};

// Operations on one volume of `size` bytes: sector-aligned writes of up to three chunks, with
// flushes, FUA writes, discards, write-zeroes and snapshots among them.
inline std::vector<Op> make_workload(u64 seed, u64 size, size_t count)
{
    std::mt19937_64 random(seed);
    std::vector<Op> ops;
    for (size_t i = 0; i < count; ++i) {
        Op op;
        u64 dice = random() % 100;
        op.kind = dice < 55 ? OpKind::Write : dice < 62 ? OpKind::FuaWrite : dice < 75 ? OpKind::Flush : dice < 83 ? OpKind::Discard
            : dice < 91                                                                                                ? OpKind::WriteZeroes
                                                                                                                       : OpKind::Snapshot;
        u64 sectors = size / SECTOR;
        op.offset = random() % sectors * SECTOR;
        op.length = std::min<u64>((1 + random() % 384) * SECTOR, size - op.offset);
        op.data_seed = random();
        op.name = "snap" + std::to_string(i);
        ops.push_back(op);
    }
    return ops;
}

inline std::vector<u8> op_data(Op const& op)
{
    std::vector<u8> data(op.length);
    std::mt19937_64 random(op.data_seed);
    for (u64 i = 0; i < data.size(); i += 8) {
        u64 value = random();
        for (u64 j = 0; j < 8 && i + j < data.size(); ++j)
            data[i + j] = static_cast<u8>(value >> (8 * j));
    }
    return data;
}

// What a volume may hold after a crash: per sector, the durable version or any written since.
class VolumeModel {
public:
    explicit VolumeModel(u64 size)
        : m_durable(size, 0)
        , m_current(size, 0)
    {
    }

    std::vector<u8> const& current() const { return m_current; }
    std::vector<u8> const& durable() const { return m_durable; }

    void write(u64 offset, std::vector<u8> const& data)
    {
        std::copy(data.begin(), data.end(), m_current.begin() + static_cast<long>(offset));
        m_since.push_back({ offset, data });
    }
    void commit()
    {
        m_durable = m_current;
        m_since.clear();
    }
    void resize(u64 size)
    {
        m_current.resize(size, 0);
        commit();
    }

    // The first sector of actual that is neither durable nor written since, or -1.
    long long first_bad_sector(std::vector<u8> const& actual) const
    {
        if (actual.size() != m_durable.size())
            return 0;
        for (u64 sector = 0; sector < actual.size() / SECTOR; ++sector) {
            u64 at = sector * SECTOR;
            auto same = [&](u8 const* expected) { return std::equal(actual.begin() + static_cast<long>(at), actual.begin() + static_cast<long>(at + SECTOR), expected); };
            if (same(m_durable.data() + at))
                continue;
            bool found = false;
            for (auto it = m_since.rbegin(); it != m_since.rend() && !found; ++it) {
                if (at >= it->first && at + SECTOR <= it->first + it->second.size())
                    found = same(it->second.data() + (at - it->first));
            }
            if (!found)
                return static_cast<long long>(sector);
        }
        return -1;
    }

private:
    std::vector<u8> m_durable;
    std::vector<u8> m_current;
    std::vector<std::pair<u64, std::vector<u8>>> m_since;
};

} // namespace kasou::storage::test
