#include "storage/pool/thin_pool.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <signal.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/try.h"
#include "storage/pool/member_label.h"
#include "storage/pool/thin_volume.h"

namespace kasou::storage {

namespace {

// Plans how much of each disk the new segment uses and gives each a member uuid; writes nothing,
// so a refusal (a disk too small, one in use by another pool) leaves every disk as it was.
ErrorOr<std::vector<std::unique_ptr<PoolMember>>> plan_members(SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<MemberDisk>> disks, bool force)
{
    if (disks.empty())
        return make_error("no disks given");
    std::vector<u64> sizes;
    for (auto const& disk : disks) {
        TRY(check_disk_unused(*disk, force));
        sizes.push_back(disk->size());
    }
    u64 shared_usable = 0;
    if (kind != SegmentKind::Linear)
        shared_usable = TRY(PoolLayout::plan_segment(kind, sizes, stripe_size));
    std::vector<std::unique_ptr<PoolMember>> members;
    for (auto& disk : disks) {
        auto member = std::make_unique<PoolMember>();
        member->usable_size = kind == SegmentKind::Linear ? TRY(PoolLayout::plan_segment(kind, { disk->size() }, 0).map_error([&](Error const& error) {
            return error.with_prefix(disk->name());
        }))
                                                          : shared_usable;
        member->uuid = TRY(Uuid::random());
        member->disk = std::move(disk);
        members.push_back(std::move(member));
    }
    return members;
}

ErrorOr<void> write_labels(std::span<std::unique_ptr<PoolMember> const> members, Uuid const& pool_uuid, std::string const& pool_name)
{
    for (auto const& member : members)
        TRY(write_member_label(*member->disk, pool_uuid, member->uuid, pool_name));
    return {};
}

} // namespace

ThinPool::ThinPool(std::string name, Uuid uuid, PoolLayout layout)
    : m_name(std::move(name))
    , m_uuid(uuid)
    , m_layout(std::move(layout))
    , m_space(m_name)
    , m_last_commit(std::chrono::steady_clock::now())
{
}

ThinPool::~ThinPool()
{
    if (!m_closed) {
        if (auto result = close(); !result)
            spdlog::error("pool {}: closing: {}", m_name, result.error().to_string());
    }
}

ErrorOr<std::shared_ptr<ThinPool>> ThinPool::create(std::string const& name, SegmentKind kind, u64 stripe_size,
    std::vector<std::unique_ptr<MemberDisk>> disks, bool force)
{
    TRY(validate_name(name, "pool"));
    Uuid uuid = TRY(Uuid::random());
    PoolLayout layout;
    TRY(layout.add_segment(kind, stripe_size, TRY(plan_members(kind, stripe_size, std::move(disks), force))));
    if (layout.size() / CHUNK_SIZE < minimum_chunks())
        return make_error(fmt::format("pool {} would be too small: its disks leave {} bytes after their headers, and a pool needs at least {} ({} "
                                      "chunks of {}: {} kept free for metadata commits, one for the metadata of a first volume, one for its "
                                      "data); a linear pool needs a disk of at least {} bytes",
            name, layout.size(), minimum_chunks() * CHUNK_SIZE, minimum_chunks(), CHUNK_SIZE, reserve_chunks_for(Reserve::Data, 1), MEMBER_HEADER_SIZE + minimum_chunks() * CHUNK_SIZE));
    TRY(write_labels(layout.members(), uuid, name));
    auto pool = std::shared_ptr<ThinPool>(new ThinPool(name, uuid, std::move(layout)));
    pool->grow_chunk_tables();
    TRY(pool->m_layout.write_intents());
    pool->m_dirty = true;
    TRY(pool->commit());
    return pool;
}

ErrorOr<std::shared_ptr<ThinPool>> ThinPool::open(std::vector<std::unique_ptr<MemberDisk>> disks)
{
    if (disks.empty())
        return make_error("no disks given");
    std::vector<MemberLabel> labels;
    std::optional<Superblock> newest;
    for (auto& disk : disks) {
        labels.push_back(TRY(read_member_label(*disk)));
        if (labels.back().pool_uuid != labels.front().pool_uuid)
            return make_error(fmt::format("{} belongs to pool '{}' but {} to pool '{}': give the disks of one pool", disks.front()->name(),
                name_of(labels.front().pool_name), disk->name(), name_of(labels.back().pool_name)));
        auto superblock = read_newest_superblock(*disk, labels.back().pool_uuid);
        if (superblock && (!newest || superblock->generation > newest->generation))
            newest = superblock;
    }
    if (!newest)
        return make_error(ErrorKind::Corrupt, fmt::format("no valid superblock on {}: the pool '{}' was never completely created, or its disks were overwritten",
            disks.front()->name(), name_of(labels.front().pool_name)));
    TRY(validate_superblock(*newest));
    std::vector<std::unique_ptr<MemberDisk>> ordered(newest->member_count);
    for (size_t i = 0; i < disks.size(); ++i) {
        u32 index = 0;
        while (index < newest->member_count && newest->members[index].uuid != labels[i].member_uuid)
            ++index;
        if (index == newest->member_count)
            return make_error(fmt::format("{} is no longer a member of pool '{}' (it was replaced or never added); leave it out",
                disks[i]->name(), name_of(newest->pool_name)));
        if (ordered[index])
            return make_error(fmt::format("{} and {} are the same member of pool '{}'", ordered[index]->name(), disks[i]->name(), name_of(newest->pool_name)));
        ordered[index] = std::move(disks[i]);
    }
    bool lagging = false;
    for (auto const& disk : ordered) {
        if (!disk)
            continue;
        auto superblock = read_newest_superblock(*disk, newest->pool_uuid);
        lagging = lagging || !superblock || superblock->generation != newest->generation;
    }
    auto layout = TRY(PoolLayout::from_superblock(*newest, std::move(ordered)));
    auto pool = std::shared_ptr<ThinPool>(new ThinPool(name_of(newest->pool_name), newest->pool_uuid, std::move(layout)));
    pool->m_generation = newest->generation;
    TRY(pool->load(*newest));
    // After an unclean shutdown, the mirrors' copies may differ where writes were under way.
    if (u64 regions = TRY(pool->m_layout.resync_intents()); regions > 0)
        spdlog::info("pool {}: copied {} region(s) a write was under way in between mirror copies", pool->m_name, regions);
    // A member that missed the last superblock write, or was found missing, is brought up to date
    // by the next commit.
    for (u32 index = 0; index < newest->member_count; ++index)
        lagging = lagging || pool->m_layout.members()[index]->state != newest->members[index].state;
    pool->m_dirty = lagging;
    return pool;
}

void ThinPool::grow_chunk_tables()
{
    m_space.grow(m_layout.size() / CHUNK_SIZE);
}

namespace {

ErrorOr<void> check_volume_size(u64 size)
{
    if (size == 0 || size % 512 != 0)
        return make_error(fmt::format("volume size {} must be a non-zero multiple of 512 bytes", size));
    if (size > MAX_VOLUME_CHUNKS * CHUNK_SIZE)
        return make_error(fmt::format("volume size {} is larger than the largest volume ({} bytes)", size, MAX_VOLUME_CHUNKS * CHUNK_SIZE));
    return {};
}

// A volume record's fields on their own and against the superblock's; the tree it points to is
// checked as it is loaded.
ErrorOr<void> validate_volume_record(VolumeInfo const& volume, u64 next_volume_id, u64 pool_blocks)
{
    if (volume.id == 0 || volume.id >= next_volume_id)
        return make_error(ErrorKind::Corrupt, fmt::format("volume id {} is not from 1 to the superblock's next volume id {} - 1", volume.id, next_volume_id));
    TRY(validate_name(volume.name, "volume"));
    TRY(check_volume_size(volume.size).map_error([&](Error const& error) { return error.with_prefix(fmt::format("volume '{}'", volume.name)); }));
    if (volume.flags & ~static_cast<u32>(VOLUME_READ_ONLY | VOLUME_DELETING))
        return make_error(ErrorKind::Corrupt, fmt::format("volume '{}' has unknown flags {:#x}", volume.name, volume.flags));
    if (volume.origin_id >= volume.id)
        return make_error(ErrorKind::Corrupt, fmt::format("volume '{}' (id {}) names origin {}, which is not an earlier volume id", volume.name, volume.id, volume.origin_id));
    if (volume.root != 0 && volume.root - 1 >= pool_blocks)
        return make_error(ErrorKind::Corrupt, fmt::format("volume '{}' has root node {}, outside the pool's {} blocks", volume.name, volume.root - 1, pool_blocks));
    return {};
}

} // namespace

ErrorOr<void> ThinPool::load(Superblock const& superblock)
{
    grow_chunk_tables();
    m_next_volume_id = superblock.next_volume_id;
    u64 blocks = m_layout.size() / BLOCK_SIZE;
    std::set<u64> table_blocks;
    std::set<std::string> names;
    for (u64 ref = superblock.volume_table; ref != 0;) {
        u64 block_number = ref - 1;
        if (block_number >= blocks || !table_blocks.insert(block_number).second)
            return make_error(ErrorKind::Corrupt, fmt::format("volume table block {} is out of range or part of a loop", block_number));
        Block block {};
        TRY(m_layout.read(block_number * BLOCK_SIZE, block));
        TRY(verify_block(block, VOLUME_TABLE_MAGIC, fmt::format("volume table block {}", block_number)));
        auto const& header = view_as<VolumeTableHeader>(block);
        if (header.block != block_number)
            return make_error(ErrorKind::Corrupt, fmt::format("volume table block {} is misdirected (says block {})", block_number, header.block));
        if (header.count > VOLUMES_PER_TABLE_BLOCK)
            return make_error(ErrorKind::Corrupt, fmt::format("volume table block {} has count {}, but a block holds at most {} volumes", block_number, header.count, VOLUMES_PER_TABLE_BLOCK));
        auto const* records = reinterpret_cast<VolumeRecord const*>(block.data() + sizeof(VolumeTableHeader));
        for (u32 i = 0; i < header.count; ++i) {
            auto const& record = records[i];
            VolumeInfo info { record.id, name_of(record.name), record.size, record.root, record.origin_id, record.created, record.flags };
            TRY(validate_volume_record(info, superblock.next_volume_id, blocks).map_error([&](Error const& error) {
                return error.with_prefix(fmt::format("volume table block {} entry {}", block_number, i));
            }));
            if (!m_volumes.emplace(info.id, info).second)
                return make_error(ErrorKind::Corrupt, fmt::format("volume table block {} entry {}: volume id {} appears twice in the volume table", block_number, i, info.id));
            if (!info.deleting() && !names.insert(info.name).second)
                return make_error(ErrorKind::Corrupt, fmt::format("volume table block {} entry {}: volume name '{}' appears twice in the volume table", block_number, i, info.name));
        }
        m_table_blocks.push_back(block_number);
        m_space.mark_metadata(block_number);
        ref = header.next;
    }
    for (auto const& entry : m_volumes) {
        auto const& volume = entry.second;
        if (volume.root)
            TRY(load_tree(volume.root, TREE_DEPTH - 1).map_error([&](Error const& error) { return error.with_prefix(fmt::format("volume '{}'", volume.name)); }));
    }
    TRY(m_space.finish_load([&](u64 block) { return m_nodes.contains(block) || table_blocks.contains(block); }));
    for (auto const& [id, volume] : m_volumes) {
        if (!volume.deleting() && volume.root) {
            u64 chunks = (volume.size + CHUNK_SIZE - 1) / CHUNK_SIZE;
            if (auto beyond = next_mapped(volume.root, TREE_DEPTH - 1, 0, chunks))
                return make_error(ErrorKind::Corrupt, fmt::format("volume '{}' maps chunk {} beyond its size", volume.name, *beyond));
        }
    }
    return {};
}

ErrorOr<void> ThinPool::load_tree(u64 ref, u32 level)
{
    u64 block_number = ref - 1;
    if (block_number >= m_layout.size() / BLOCK_SIZE)
        return make_error(ErrorKind::Corrupt, fmt::format("node pointer {} is outside the pool", block_number));
    if (auto it = m_nodes.find(block_number); it != m_nodes.end()) {
        if (it->second.level != level)
            return make_error(ErrorKind::Corrupt, fmt::format("node {} is reached at levels {} and {}", block_number, it->second.level, level));
        ++it->second.refs;
        return {};
    }
    Block block {};
    TRY(m_layout.read(block_number * BLOCK_SIZE, block));
    TRY(verify_block(block, NODE_MAGIC, fmt::format("node {}", block_number)));
    auto const& header = view_as<NodeHeader>(block);
    if (header.block != block_number || header.level != level)
        return make_error(ErrorKind::Corrupt, fmt::format("node {} is misdirected (says block {} level {}, expected level {})", block_number, header.block, header.level, level));
    if (m_space.is_metadata(block_number / BLOCKS_PER_CHUNK) && std::find(m_table_blocks.begin(), m_table_blocks.end(), block_number) != m_table_blocks.end())
        return make_error(ErrorKind::Corrupt, fmt::format("block {} is both a node and a volume table block", block_number));
    Node node;
    node.entries = std::make_unique<Entries>();
    std::memcpy(node.entries->data(), block.data() + sizeof(NodeHeader), sizeof(Entries));
    node.level = level;
    node.refs = 1;
    auto& slot = m_nodes.emplace(block_number, std::move(node)).first->second;
    m_space.mark_metadata(block_number);
    for (u64 entry : *slot.entries) {
        if (!entry)
            continue;
        if (level > 0) {
            TRY(load_tree(entry, level - 1));
            continue;
        }
        if (entry - 1 >= m_space.chunks())
            return make_error(ErrorKind::Corrupt, fmt::format("node {} maps data chunk {} outside the pool", block_number, entry - 1));
        m_space.load_ref(entry - 1);
    }
    return {};
}

u64 ThinPool::generation() const
{
    std::shared_lock lock(m_lock);
    return m_generation;
}

ErrorOr<void> ThinPool::check_usable() const
{
    if (m_closed)
        return make_errno_error(ESHUTDOWN, fmt::format("pool {} is closed", m_name));
    if (m_broken)
        return tl::unexpected(m_broken->with_prefix(fmt::format("pool {} stopped writing after a failed commit (reopen it)", m_name)));
    return {};
}

VolumeInfo* ThinPool::find_volume(std::string const& name)
{
    for (auto& [id, volume] : m_volumes) {
        if (!volume.deleting() && volume.name == name)
            return &volume;
    }
    return nullptr;
}

VolumeInfo const* ThinPool::find_volume(std::string const& name) const
{
    return const_cast<ThinPool*>(this)->find_volume(name);
}

std::vector<VolumeInfo> ThinPool::volumes() const
{
    std::shared_lock lock(m_lock);
    std::vector<VolumeInfo> result;
    for (auto const& [id, volume] : m_volumes) {
        if (!volume.deleting())
            result.push_back(volume);
    }
    std::sort(result.begin(), result.end(), [](auto const& a, auto const& b) { return a.name < b.name; });
    return result;
}

ErrorOr<VolumeInfo> ThinPool::volume_info(std::string const& name) const
{
    std::shared_lock lock(m_lock);
    if (auto const* volume = find_volume(name))
        return *volume;
    return make_error(ErrorKind::NotFound, fmt::format("pool {} has no volume '{}'", m_name, name));
}

PoolUsage ThinPool::usage() const
{
    std::shared_lock lock(m_lock);
    PoolUsage usage;
    usage.size = m_layout.size();
    usage.data_used = m_space.data_chunks() * CHUNK_SIZE;
    usage.metadata_chunks = m_space.metadata_chunks();
    usage.metadata_used = (m_nodes.size() + m_table_blocks.size()) * BLOCK_SIZE;
    usage.free = m_space.free_chunks() * CHUNK_SIZE;
    usage.zeroed = m_space.zeroed_chunks() * CHUNK_SIZE;
    usage.reserve = reserve_chunks(Reserve::Data) * CHUNK_SIZE;
    return usage;
}

ErrorOr<void> ThinPool::create_volume(std::string const& name, u64 size)
{
    TRY(validate_name(name, "volume"));
    TRY(check_volume_size(size));
    std::unique_lock lock(m_lock);
    TRY(check_usable());
    if (find_volume(name))
        return make_error(ErrorKind::AlreadyExists, fmt::format("pool {} already has a volume '{}'", m_name, name));
    TRY(check_room_for_volume());
    VolumeInfo info;
    info.id = m_next_volume_id++;
    info.name = name;
    info.size = size;
    info.created = static_cast<u64>(std::time(nullptr));
    m_volumes.emplace(info.id, info);
    m_dirty = true;
    return commit_locked(lock);
}

ErrorOr<void> ThinPool::snapshot(std::string const& origin, std::string const& name, bool writable)
{
    TRY(validate_name(name, "volume"));
    std::unique_lock lock(m_lock);
    TRY(check_usable());
    auto const* source = find_volume(origin);
    if (!source)
        return make_error(ErrorKind::NotFound, fmt::format("pool {} has no volume '{}'", m_name, origin));
    if (find_volume(name))
        return make_error(ErrorKind::AlreadyExists, fmt::format("pool {} already has a volume '{}'", m_name, name));
    TRY(check_room_for_volume());
    VolumeInfo info = *source;
    info.id = m_next_volume_id++;
    info.name = name;
    info.origin_id = source->id;
    info.created = static_cast<u64>(std::time(nullptr));
    info.flags = writable ? 0u : static_cast<u32>(VOLUME_READ_ONLY);
    if (info.root)
        ++node(info.root).refs;
    m_volumes.emplace(info.id, info);
    m_dirty = true;
    return commit_locked(lock);
}

ErrorOr<VolumeInfo*> ThinPool::writable_volume(u64 id, char const* what)
{
    TRY(check_usable());
    auto it = m_volumes.find(id);
    if (it == m_volumes.end() || it->second.deleting())
        return make_errno_error(ENOENT, fmt::format("{}: the volume was removed from pool {}", what, m_name));
    if (it->second.read_only())
        return make_errno_error(EROFS, fmt::format("{}: '{}' is a read-only snapshot", what, it->second.name));
    return &it->second;
}

ErrorOr<void> ThinPool::resize(std::string const& name, u64 size)
{
    TRY(check_volume_size(size));
    u64 id = 0;
    {
        std::shared_lock lock(m_lock);
        auto const* volume = find_volume(name);
        if (!volume)
            return make_error(ErrorKind::NotFound, fmt::format("pool {} has no volume '{}'", m_name, name));
        id = volume->id;
        if (size < volume->size && size % CHUNK_SIZE != 0) {
            u64 tail_end = std::min(volume->size, (size / CHUNK_SIZE + 1) * CHUNK_SIZE);
            lock.unlock();
            TRY(zero_range(id, size, tail_end - size, true));
        }
    }
    std::unique_lock lock(m_lock);
    auto* volume = TRY(writable_volume(id, "resize"));
    if (size < volume->size) {
        u64 first = (size + CHUNK_SIZE - 1) / CHUNK_SIZE;
        TRY(unmap(volume->root, TREE_DEPTH - 1, 0, first, MAX_VOLUME_CHUNKS, Reserve::Node));
    }
    volume->size = size;
    m_dirty = true;
    return commit_locked(lock);
}

ErrorOr<void> ThinPool::remove(std::string const& name)
{
    {
        std::unique_lock lock(m_lock);
        TRY(check_usable());
        auto* volume = find_volume(name);
        if (!volume)
            return make_error(ErrorKind::NotFound, fmt::format("pool {} has no volume '{}'", m_name, name));
        if (auto it = m_open_volumes.find(volume->id); it != m_open_volumes.end() && !it->second.expired())
            return make_error(ErrorKind::Busy, fmt::format("volume '{}' is in use", name));
        volume->flags |= VOLUME_DELETING;
        m_dirty = true;
        TRY(commit_locked(lock));
    }
    m_background_wake.notify_all();
    return {};
}

ErrorOr<std::shared_ptr<BlockDevice>> ThinPool::open_volume(std::string const& name)
{
    std::unique_lock lock(m_lock);
    if (m_closed)
        return make_errno_error(ESHUTDOWN, fmt::format("pool {} is closed", m_name));
    auto const* volume = find_volume(name);
    if (!volume)
        return make_error(ErrorKind::NotFound, fmt::format("pool {} has no volume '{}'", m_name, name));
    auto& cached = m_open_volumes[volume->id];
    if (auto existing = cached.lock())
        return std::shared_ptr<BlockDevice>(existing);
    auto device = std::make_shared<ThinVolume>(shared_from_this(), volume->id, volume->read_only());
    cached = device;
    return std::shared_ptr<BlockDevice>(device);
}

ErrorOr<bool> ThinPool::deletion_step()
{
    std::unique_lock lock(m_lock);
    TRY(check_usable());
    auto it = std::find_if(m_volumes.begin(), m_volumes.end(), [](auto const& entry) { return entry.second.deleting(); });
    if (it == m_volumes.end())
        return false;
    auto& volume = it->second;
    // A tree shared with a snapshot goes in O(1); one owned alone is released a leaf at a time.
    if (volume.root && node(volume.root).refs > 1) {
        unref(volume.root, TREE_DEPTH - 1);
        volume.root = 0;
    }
    if (volume.root) {
        if (auto mapped = next_mapped(volume.root, TREE_DEPTH - 1, 0, 0)) {
            u64 leaf = *mapped - *mapped % NODE_FANOUT;
            TRY(unmap(volume.root, TREE_DEPTH - 1, 0, leaf, leaf + NODE_FANOUT, Reserve::Commit));
        } else {
            unref(volume.root, TREE_DEPTH - 1);
            volume.root = 0;
        }
    }
    if (!volume.root)
        m_volumes.erase(it);
    m_dirty = true;
    return true;
}

ErrorOr<void> ThinPool::finish_deletions()
{
    while (TRY(deletion_step())) { }
    return commit();
}

void ThinPool::start_background()
{
    m_background = std::thread([this] {
        // Signals are for the program's own threads (a server waits for SIGTERM on a signalfd):
        // this thread must never be the one the kernel picks to deliver them to.
        sigset_t all;
        sigfillset(&all);
        ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
        background_loop();
    });
    if (auto index = m_layout.rebuilding_member()) {
        m_rebuilder = std::thread([this, index = *index] {
            sigset_t all;
            sigfillset(&all);
            ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
            // A rebuild cut short, resumed; every member left to rebuild, one after another.
            for (auto next = std::optional { index }; next && !m_rebuild_stop; next = m_layout.rebuilding_member()) {
                if (auto result = run_rebuild(*next, {}); !result) {
                    if (result.error().code() != ECANCELED)
                        spdlog::error("pool {}: rebuilding member {}: {}", m_name, *next, result.error().to_string());
                    break;
                }
            }
        });
    }
    m_zeroer = std::thread([this] {
        sigset_t all;
        sigfillset(&all);
        ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
        zeroer_loop();
    });
}

void ThinPool::background_loop()
{
    using namespace std::chrono_literals;
    std::unique_lock wait_lock(m_background_mutex);
    while (!m_background_stop) {
        m_background_wake.wait_for(wait_lock, 200ms);
        if (m_background_stop)
            break;
        wait_lock.unlock();
        for (;;) {
            auto step = deletion_step();
            if (!step) {
                spdlog::error("pool {}: releasing a removed volume: {}", m_name, step.error().to_string());
                break;
            }
            if (!*step || m_background_stop)
                break;
        }
        bool due = false;
        {
            std::shared_lock lock(m_lock);
            due = std::chrono::steady_clock::now() - m_last_commit >= 1s && (m_dirty || m_layout.members_changed()) && !m_broken && !m_closed;
        }
        // Data written since is left to the kernel's write-back, as any cached write is: only a
        // flush promises it durable.
        if (due) {
            if (auto result = commit_mappings(); !result)
                spdlog::error("pool {}: periodic commit: {}", m_name, result.error().to_string());
        }
        wait_lock.lock();
    }
}

ErrorOr<void> ThinPool::close()
{
    {
        std::lock_guard wait_lock(m_background_mutex);
        m_background_stop = true;
    }
    m_background_wake.notify_all();
    if (m_background.joinable())
        m_background.join();
    if (m_zeroer.joinable())
        m_zeroer.join();
    m_rebuild_stop = true;
    if (m_rebuilder.joinable())
        m_rebuilder.join();
    // Removed volumes still being released are finished now: it is work in memory only.
    while (!m_closed && !m_broken) {
        auto step = deletion_step();
        if (!step || !*step)
            break;
    }
    std::unique_lock lock(m_lock);
    if (m_closed)
        return {};
    // Writes may come in while a commit's flush runs without the lock: commit again if some did,
    // a few times at most (a write racing close has no flush to promise it durable anyway).
    ErrorOr<void> result;
    for (int round = 0; round < 4 && result && !m_broken && (round == 0 || m_dirty || m_data_dirty || m_layout.members_changed()); ++round)
        result = commit_locked(lock);
    // Nothing is written any more: the mirrors' copies agree, and their bitmaps say so.
    if (result && !m_broken) {
        m_layout.begin_settle_intents();
        result = m_layout.flush();
        if (result)
            result = m_layout.finish_settle_intents();
    }
    m_closed = true;
    return result;
}

ErrorOr<void> ThinPool::add_members(SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<MemberDisk>> disks, bool force)
{
    std::unique_lock lock(m_lock);
    wait_for_unlocked_io(lock);
    return add_members_locked(lock, kind, stripe_size, std::move(disks), force);
}

ErrorOr<void> ThinPool::grow(std::vector<std::unique_ptr<MemberDisk>> disks, bool force)
{
    std::unique_lock lock(m_lock);
    wait_for_unlocked_io(lock);
    auto const& first = m_layout.segments().front();
    SegmentKind kind = first.kind == SegmentKind::Striped && disks.size() == 1 ? SegmentKind::Linear : first.kind;
    return add_members_locked(lock, kind, first.stripe_size, std::move(disks), force);
}

std::optional<u32> ThinPool::member_index_locked(MemberDisk& disk) const
{
    auto label = read_member_label(disk);
    if (!label || label->pool_uuid != m_uuid)
        return std::nullopt;
    auto const& members = m_layout.members();
    for (u32 index = 0; index < members.size(); ++index) {
        if (members[index]->uuid == label->member_uuid)
            return index;
    }
    return std::nullopt;
}

ErrorOr<void> ThinPool::add_members_locked(std::unique_lock<std::shared_mutex>& lock, SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<MemberDisk>> disks, bool force)
{
    TRY(check_usable());
    // force may take another pool's disk, never one of this pool: relabelling a member would lose
    // it (the pool could no longer be opened) and lay the new segment over its data.
    for (auto const& disk : disks) {
        if (auto index = member_index_locked(*disk))
            return make_error(ErrorKind::AlreadyExists, fmt::format("{} is already member {} of pool {}; a disk is added once", disk->name(), *index, m_name));
    }
    // Checked before any disk is labelled, so a refused add leaves the disks as they were.
    TRY(m_layout.check_room_for(kind, disks.size()));
    auto members = TRY(plan_members(kind, stripe_size, std::move(disks), force));
    TRY(write_labels(members, m_uuid, m_name));
    TRY(m_layout.add_segment(kind, stripe_size, std::move(members)));
    TRY(m_layout.write_intents());
    grow_chunk_tables();
    m_dirty = true;
    return commit_locked(lock);
}

ErrorOr<void> ThinPool::replace_member(u32 index, std::unique_ptr<MemberDisk> disk, std::function<void(u64, u64)> const& progress)
{
    {
        std::unique_lock lock(m_lock);
        wait_for_unlocked_io(lock);
        TRY(check_usable());
        auto const& members = m_layout.members();
        if (index >= members.size())
            return make_error(ErrorKind::NotFound, fmt::format("pool {} has no member {}", m_name, index));
        if (members[index]->state != MemberState::Failed)
            return make_error(fmt::format("member {} of pool {} is {}; only a failed member can be replaced", index, m_name,
                members[index]->state == MemberState::Healthy ? "healthy" : "being rebuilt"));
        if (disk->size() < MEMBER_HEADER_SIZE + members[index]->usable_size)
            return make_error(fmt::format("{} has {} bytes; the member it replaces needs {}", disk->name(), disk->size(), MEMBER_HEADER_SIZE + members[index]->usable_size));
        TRY(check_disk_unused(*disk, false));
        Uuid uuid = TRY(Uuid::random());
        TRY(write_member_label(*disk, m_uuid, uuid, m_name));
        m_layout.replace_member_disk(index, std::move(disk), uuid);
        TRY(m_layout.start_rebuild(index));
        m_dirty = true;
        TRY(commit_locked(lock));
    }
    return run_rebuild(index, progress);
}

ErrorOr<u32> ThinPool::resync_failed_members(std::function<void(u64, u64)> const& progress)
{
    std::vector<u32> rebuilds;
    {
        std::unique_lock lock(m_lock);
        wait_for_unlocked_io(lock);
        TRY(check_usable());
        for (u32 index = 0; index < m_layout.members().size(); ++index) {
            auto const& member = *m_layout.members()[index];
            if (member.state == MemberState::Healthy || !member.disk)
                continue;
            if (member.state == MemberState::Failed)
                TRY(m_layout.start_rebuild(index));
            rebuilds.push_back(index);
        }
        if (rebuilds.empty())
            return 0;
        m_dirty = true;
        TRY(commit_locked(lock));
    }
    for (u32 index : rebuilds)
        TRY(run_rebuild(index, progress));
    return static_cast<u32>(rebuilds.size());
}

ErrorOr<void> ThinPool::run_rebuild(u32 index, std::function<void(u64, u64)> const& progress)
{
    using namespace std::chrono_literals;
    std::lock_guard one_at_a_time(m_rebuild_mutex);
    u64 total = 0;
    {
        std::shared_lock lock(m_lock);
        auto const& member = *m_layout.members()[index];
        if (member.state != MemberState::Rebuilding)
            return {}; // finished (or failed) meanwhile
        total = member.usable_size;
    }
    auto recorded = std::chrono::steady_clock::now();
    bool due = false;
    for (bool done = false; !done;) {
        {
            // The shared lock keeps the layout's members in place (adding members takes it
            // exclusively); the layout's rebuild lock keeps writes off the range being copied.
            std::shared_lock lock(m_lock);
            TRY(check_usable());
            if (m_rebuild_stop) {
                TRY(m_layout.checkpoint_rebuild(index));
                return make_errno_error(ECANCELED, fmt::format("pool {}: rebuild of member {} stopped at byte {} of {}; it goes on when the pool is opened again",
                    m_name, index, m_layout.members()[index]->rebuilt.load(), total));
            }
            done = TRY(m_layout.rebuild_step(index, REBUILD_RANGE));
            if (progress)
                progress(m_layout.members()[index]->rebuilt, total);
            due = !done && (std::chrono::steady_clock::now() - recorded >= 1s || m_layout.members()[index]->rebuilt - m_layout.members()[index]->checkpoint >= REBUILD_CHECKPOINT_BYTES);
            if (due)
                TRY(m_layout.checkpoint_rebuild(index));
        }
        if (due) {
            TRY(commit_mappings());
            recorded = std::chrono::steady_clock::now();
        }
    }
    std::unique_lock lock(m_lock);
    wait_for_unlocked_io(lock);
    TRY(m_layout.finish_rebuild(index));
    m_dirty = true;
    return commit_locked(lock);
}

} // namespace kasou::storage
