#pragma once

// A deterministic random workload for the crash tests, and the model of what a pool may hold after
// a crash: the same seed gives the same operations, so a test can replay what a killed process was
// doing and know what each volume must hold.

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/types.h"
#include "storage/pool/format.h"

namespace kasou::storage::test {

constexpr u64 SECTOR = 512;

// What a volume may hold after a crash: per sector, the durable version or any written since.
// Invariants: durable() and current() have the volume's size, and are the same content whenever
// nothing was written since the last commit. The contents are shared copy-on-write between
// copies of a model (a snapshot's model is a copy of its origin's), so copying one is cheap.
class VolumeModel {
public:
    explicit VolumeModel(u64 size)
        : m_durable(std::make_shared<std::vector<u8>>(size, 0))
        , m_current(m_durable)
    {
    }

    std::vector<u8> const& current() const { return *m_current; }
    std::vector<u8> const& durable() const { return *m_durable; }

    void write(u64 offset, std::vector<u8> const& data)
    {
        std::copy(data.begin(), data.end(), own(m_current).begin() + static_cast<long>(offset));
        m_since.push_back({ offset, data });
    }
    void commit()
    {
        m_durable = m_current;
        m_since.clear();
    }
    void resize(u64 size)
    {
        own(m_current).resize(size, 0);
        commit();
    }

    // The first sector of actual that is neither durable nor written since, or -1.
    long long first_bad_sector(std::vector<u8> const& actual) const
    {
        auto const& durable = *m_durable;
        if (actual.size() != durable.size())
            return 0;
        for (u64 sector = 0; sector < actual.size() / SECTOR; ++sector) {
            u64 at = sector * SECTOR;
            auto same = [&](u8 const* expected) { return std::equal(actual.begin() + static_cast<long>(at), actual.begin() + static_cast<long>(at + SECTOR), expected); };
            if (same(durable.data() + at))
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
    // The content to change, copied first if another model or the durable version shares it.
    static std::vector<u8>& own(std::shared_ptr<std::vector<u8>>& content)
    {
        if (content.use_count() > 1)
            content = std::make_shared<std::vector<u8>>(*content);
        return *content;
    }

    std::shared_ptr<std::vector<u8>> m_durable;
    std::shared_ptr<std::vector<u8>> m_current;
    std::vector<std::pair<u64, std::vector<u8>>> m_since;
};

// What every volume of a pool may hold after a crash, following the operations that returned.
// Snapshots, clones, resizes and removals commit the whole pool, as ThinPool's do. Invariant: a
// read-only volume (a snapshot) is never written, so its durable content is what it was taken with.
class PoolModel {
public:
    struct Volume {
        VolumeModel content;
        bool read_only { false };
    };

    std::map<std::string, Volume> const& volumes() const { return m_volumes; }
    Volume const& at(std::string const& name) const { return m_volumes.at(name); }
    // Each volume's name and size: what tells the states around a snapshot or resize apart.
    std::map<std::string, u64> shape() const
    {
        std::map<std::string, u64> sizes;
        for (auto const& [name, volume] : m_volumes)
            sizes[name] = volume.content.current().size();
        return sizes;
    }

    void create(std::string const& name, u64 size) { m_volumes.insert_or_assign(name, Volume { VolumeModel(size), false }); }
    void write(std::string const& name, u64 offset, std::vector<u8> const& data) { m_volumes.at(name).content.write(offset, data); }
    void commit()
    {
        for (auto& [name, volume] : m_volumes)
            volume.content.commit();
    }
    void snapshot(std::string const& origin, std::string const& name, bool writable)
    {
        commit();
        m_volumes.insert_or_assign(name, Volume { m_volumes.at(origin).content, !writable });
    }
    // What ThinPool::resize does before it commits: a shrink zeroes the dropped part of the chunk
    // that keeps the new end (the rest of the tail is unmapped by the commit).
    void begin_resize(std::string const& name, u64 size)
    {
        auto& content = m_volumes.at(name).content;
        u64 old_size = content.current().size();
        if (size < old_size && size % CHUNK_SIZE != 0) {
            u64 tail_end = std::min(old_size, (size / CHUNK_SIZE + 1) * CHUNK_SIZE);
            content.write(size, std::vector<u8>(tail_end - size, 0));
        }
    }
    void resize(std::string const& name, u64 size)
    {
        begin_resize(name, size);
        commit();
        m_volumes.at(name).content.resize(size);
    }
    void remove(std::string const& name)
    {
        commit();
        m_volumes.erase(name);
    }

private:
    std::map<std::string, Volume> m_volumes;
};

enum class OpKind {
    Write,
    FuaWrite,
    Flush,
    Discard,
    WriteZeroes,
    Snapshot, // read-only snapshot of volume, named name; commits
    Clone,    // writable clone of snapshot volume, named name; commits
    Resize,   // volume to length bytes; commits
};

// One operation of the workload; which fields matter depends on kind.
struct Op {
    OpKind kind { OpKind::Write };
    std::string volume; // the volume written, flushed, snapshotted, resized or (Clone) cloned
    u64 offset { 0 };
    u64 length { 0 }; // Resize: the new size
    u64 data_seed { 0 };
    std::string name; // Snapshot, Clone: the new volume
};

inline bool commits(OpKind kind)
{
    return kind == OpKind::FuaWrite || kind == OpKind::Flush || kind == OpKind::Snapshot || kind == OpKind::Clone || kind == OpKind::Resize;
}

constexpr size_t MAX_WORKLOAD_CLONES = 3;

// Operations on a pool that starts with one writable volume "a" of `size` bytes: sector-aligned
// writes of up to three chunks to "a" or a clone, with flushes, FUA writes, discards,
// write-zeroes, snapshots of writable volumes, clones of snapshots, and resizes between half and
// one and a half times `size` (three in four not chunk-aligned, so a shrink cuts a chunk) among them.
inline std::vector<Op> make_workload(u64 seed, u64 size, size_t count)
{
    std::mt19937_64 random(seed);
    std::map<std::string, u64> writable { { "a", size } }; // name -> size
    std::vector<std::pair<std::string, u64>> snapshots;     // name -> size
    std::vector<Op> ops;
    for (size_t i = 0; i < count; ++i) {
        Op op;
        u64 dice = random() % 100;
        op.kind = dice < 45 ? OpKind::Write : dice < 51 ? OpKind::FuaWrite : dice < 62 ? OpKind::Flush : dice < 69 ? OpKind::Discard
            : dice < 76                                                                                               ? OpKind::WriteZeroes
            : dice < 85                                                                                               ? OpKind::Snapshot
            : dice < 92                                                                                               ? OpKind::Clone
                                                                                                                      : OpKind::Resize;
        if (op.kind == OpKind::Clone && (snapshots.empty() || writable.size() > MAX_WORKLOAD_CLONES))
            op.kind = OpKind::Snapshot;
        auto target = std::next(writable.begin(), static_cast<long>(random() % writable.size()));
        op.volume = target->first;
        op.offset = random() % (target->second / SECTOR) * SECTOR;
        op.length = std::min<u64>((1 + random() % 384) * SECTOR, target->second - op.offset);
        op.data_seed = random();
        if (op.kind == OpKind::Snapshot) {
            op.name = "snap" + std::to_string(i);
            snapshots.emplace_back(op.name, target->second);
        } else if (op.kind == OpKind::Clone) {
            auto const& [origin, origin_size] = snapshots[op.data_seed % snapshots.size()];
            op.volume = origin;
            op.name = "clone" + std::to_string(i);
            writable[op.name] = origin_size;
        } else if (op.kind == OpKind::Resize) {
            op.length = (size / SECTOR / 2 + op.data_seed % (size / SECTOR)) * SECTOR;
            if ((op.data_seed >> 32) % 4 == 0)
                op.length = std::max(CHUNK_SIZE, op.length / CHUNK_SIZE * CHUNK_SIZE);
            target->second = op.length;
        }
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

// The operation as the tests' messages show it, e.g. "resize a to 1536000".
inline std::string describe(Op const& op)
{
    auto range = [&] { return " " + op.volume + " " + std::to_string(op.offset) + "+" + std::to_string(op.length); };
    switch (op.kind) {
    case OpKind::Write:
        return "write" + range();
    case OpKind::FuaWrite:
        return "fua write" + range();
    case OpKind::Flush:
        return "flush " + op.volume;
    case OpKind::Discard:
        return "discard" + range();
    case OpKind::WriteZeroes:
        return "write zeroes" + range();
    case OpKind::Snapshot:
        return "snapshot " + op.volume + " as " + op.name;
    case OpKind::Clone:
        return "clone " + op.volume + " as " + op.name;
    case OpKind::Resize:
        return "resize " + op.volume + " to " + std::to_string(op.length);
    }
    return "?";
}

// Applies what op writes to model, committing nothing: all a crash may leave of an I/O operation
// that did not return, and the first part of one that did.
inline void apply_writes(PoolModel& model, Op const& op)
{
    if (op.kind == OpKind::Write || op.kind == OpKind::FuaWrite)
        model.write(op.volume, op.offset, op_data(op));
    if (op.kind == OpKind::Discard || op.kind == OpKind::WriteZeroes)
        model.write(op.volume, op.offset, std::vector<u8>(op.length, 0));
}

// Applies op to model as the pool must show it once op has returned.
inline void apply(PoolModel& model, Op const& op)
{
    apply_writes(model, op);
    if (op.kind == OpKind::Snapshot || op.kind == OpKind::Clone)
        model.snapshot(op.volume, op.name, op.kind == OpKind::Clone);
    if (op.kind == OpKind::Resize)
        model.resize(op.volume, op.length);
    if (commits(op.kind))
        model.commit();
}

// The states the pool may show when op began but was not seen to return: for a snapshot, clone
// or resize the state before it and the state after it committed; for I/O one state in which its
// data may or may not have landed (and nothing it would have committed is sure to be durable).
inline std::vector<PoolModel> in_flight(PoolModel const& model, Op const& op)
{
    PoolModel before = model;
    apply_writes(before, op);
    if (op.kind == OpKind::Resize)
        before.begin_resize(op.volume, op.length);
    if (op.kind != OpKind::Snapshot && op.kind != OpKind::Clone && op.kind != OpKind::Resize)
        return { before };
    PoolModel after = model;
    apply(after, op);
    return { before, after };
}

} // namespace kasou::storage::test
