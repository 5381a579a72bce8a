#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/block_device.h"
#include "storage/pool/format.h"
#include "storage/pool/pool_layout.h"
#include "storage/pool/space_map.h"

namespace kasou::storage {

class ThinVolume;

// A volume or snapshot as the pool lists it.
struct VolumeInfo {
    u64 id { 0 };
    std::string name;
    u64 size { 0 };
    u64 root { 0 }; // root node block + 1; 0: nothing mapped
    u64 origin_id { 0 };
    u64 created { 0 };
    u32 flags { 0 };
    bool read_only() const { return flags & VOLUME_READ_ONLY; }
    bool deleting() const { return flags & VOLUME_DELETING; }
};

// Space figures for `pool status`.
struct PoolUsage {
    u64 size { 0 };             // bytes of the logical space
    u64 data_used { 0 };        // bytes in data chunks referenced by some volume
    u64 metadata_used { 0 };    // bytes in live metadata blocks
    u64 metadata_chunks { 0 };  // chunks given to metadata
    u64 free { 0 };             // bytes in free chunks (including the reserve)
    u64 reserve { 0 };          // bytes of free space only metadata commits may use
    u64 zeroed { 0 };           // bytes of free chunks zeroed ahead of first writes
};

// A thin pool: volumes whose CHUNK_SIZE chunks are allocated on first write from a PoolLayout, with
// O(1) snapshots and clones that share chunks and copy them on write.
//
// Metadata is a copy-on-write radix tree per volume (TREE_DEPTH levels of NODE_FANOUT entries),
// shared between volumes by reference counts kept in memory and rebuilt from the trees on open. A
// node or data chunk that the last committed state can reach is never modified in place unless it
// belongs to exactly one volume and was not shared or released since that commit; everything else
// is written to free space, and commit() makes it current with one superblock write per member
// after flushing the data (commit_mappings() flushes only data that must precede its mapping). Space freed since the last commit is reused only after the next one.
//
// Thread-safety: all public functions may be called from any thread. One shared_mutex guards the
// metadata: reads of data take it shared, everything else exclusive. Member failures come from the
// layout's own atomics. A commit holds the exclusive lock only to gather what it writes and to
// publish the result: the writes and the flushes of the members run without it, while I/O goes
// on, and one commit is in flight at a time. A background thread (start_background) commits at
// least once a second and releases the trees of removed volumes a leaf at a time, taking the lock
// once per leaf.
class ThinPool : public std::enable_shared_from_this<ThinPool> {
public:
    // Labels the disks (refusing disks that carry a kasou label unless force) and writes an empty
    // pool. Linear makes one segment per disk; striped and mirror one segment over all of them.
    static ErrorOr<std::shared_ptr<ThinPool>> create(std::string const& name, SegmentKind kind, u64 stripe_size,
        std::vector<std::unique_ptr<MemberDisk>> disks, bool force);
    // Opens the pool the disks belong to, from the newest valid superblock among them. Disks may
    // come in any order; a missing mirror copy leaves the pool degraded.
    static ErrorOr<std::shared_ptr<ThinPool>> open(std::vector<std::unique_ptr<MemberDisk>> disks);
    // The fewest chunks a new pool may have (create refuses a smaller one): with fewer, its first volume could hold no data (the
    // reserve kept with one volume, a chunk of metadata blocks for its table and tree, one of data).
    static u64 minimum_chunks();
    // Free chunks the zeroer keeps zeroed (durably) for first writes, and how many it zeroes
    // between two flushes: a first write into space a removed volume freed then needs no zeroing
    // of its own and no flush before the commit that maps it.
    static constexpr u64 ZEROED_RESERVE_CHUNKS = 16384; // 1 GiB
    static constexpr u64 ZERO_BATCH_CHUNKS = 4096;
    ~ThinPool();

    ThinPool(ThinPool const&) = delete;
    ThinPool& operator=(ThinPool const&) = delete;

    std::string const& name() const { return m_name; }
    Uuid const& uuid() const { return m_uuid; }
    u64 generation() const;
    PoolUsage usage() const;
    PoolLayout const& layout() const { return m_layout; }

    // Starts the background threads: one commits and releases removed volumes, one zeroes free
    // chunks ahead of need.
    void start_background();
    // Stops background work, finishes releasing removed volumes and commits; later I/O fails
    // with "pool NAME is closed".
    ErrorOr<void> close();

    std::vector<VolumeInfo> volumes() const;
    ErrorOr<VolumeInfo> volume_info(std::string const& name) const;
    ErrorOr<void> create_volume(std::string const& name, u64 size);
    // O(1): the snapshot shares the origin's tree. Commits.
    ErrorOr<void> snapshot(std::string const& origin, std::string const& name, bool writable);
    ErrorOr<void> resize(std::string const& name, u64 size);
    // Removes the name at once (committed); the space is released in the background.
    ErrorOr<void> remove(std::string const& name);
    // The volume as a BlockDevice (read-only for snapshots); the same object while it lives.
    ErrorOr<std::shared_ptr<BlockDevice>> open_volume(std::string const& name);
    // Releases every removed volume's tree now (what the background thread does bit by bit).
    ErrorOr<void> finish_deletions();

    // Grows the pool online: labels the disks and appends a segment. A disk that is already a
    // member of this pool is refused, force or not.
    ErrorOr<void> add_members(SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<MemberDisk>> disks, bool force);
    // add_members with the pool's own layout, chosen under the pool lock: the first segment's
    // kind and stripe size, except that a single disk added to a striped pool extends it linearly.
    ErrorOr<void> grow(std::vector<std::unique_ptr<MemberDisk>> disks, bool force);
    // Puts disk in place of failed member `index` of a mirror and rebuilds it. The rebuild runs
    // online, in ranges (REBUILD_RANGE), without the pool lock: I/O goes on meanwhile, writes reach
    // the new copy too, reads come from the healthy ones. Its position is recorded by a commit about
    // once a second, so a rebuild cut short (a crash, close()) goes on from there when the pool is
    // opened again (start_background, or resync_failed_members). progress(done, total) follows it.
    ErrorOr<void> replace_member(u32 index, std::unique_ptr<MemberDisk> disk, std::function<void(u64, u64)> const& progress);
    // Rebuilds failed members whose disks are present again, and finishes rebuilds cut short.
    ErrorOr<u32> resync_failed_members(std::function<void(u64, u64)> const& progress);
    static constexpr u64 REBUILD_RANGE = 1 * MiB;
    // The position is recorded at least this often (and at least once a second).
    static constexpr u64 REBUILD_CHECKPOINT_BYTES = 4 * MiB;

    // Makes everything written so far durable and the metadata current (what flush() does).
    ErrorOr<void> commit();
    // What the background thread does at least once a second: makes the volumes' mappings
    // current without promising that data written is durable. The members are flushed only when
    // a chunk mapped since the last commit holds data that must be durable before the metadata
    // that maps it (copied from a shared chunk, or over space that is not a durable hole).
    ErrorOr<void> commit_mappings();
    // Offline consistency check of the committed state as found on the disks: every fault found,
    // empty when clean.
    std::vector<std::string> check();

    // Volume I/O by id, used by ThinVolume.
    u64 volume_size(u64 id) const;
    ErrorOr<void> read(u64 id, u64 offset, std::span<u8> buffer);
    ErrorOr<void> write(u64 id, u64 offset, std::span<u8 const> data, bool fua);
    ErrorOr<void> flush();
    ErrorOr<void> discard(u64 id, u64 offset, u64 length);
    ErrorOr<void> write_zeroes(u64 id, u64 offset, u64 length, bool may_unmap);
    ErrorOr<std::vector<Extent>> block_status(u64 id, u64 offset, u64 length);

private:
    using Entries = std::array<u64, NODE_FANOUT>;
    struct Node {
        std::unique_ptr<Entries> entries;
        u32 level { 0 };
        u32 refs { 0 };
        bool fresh { false }; // written since the last commit: not reachable from it
        // Its reference count dropped since the last commit gathered, others keeping it (touched),
        // or before the commit in flight gathered (in_flight): the state on disk may share it with
        // more owners than memory shows, so nothing under it is written in place meanwhile.
        bool touched { false };
        bool in_flight { false };
    };
    // A metadata block a commit writes, sealed when it is written.
    struct MetadataWrite {
        u64 number { 0 };
        u64 magic { 0 };
        Block block {};
    };
    // What one commit writes, and what it frees once it has landed. Gathered under the exclusive
    // lock; from then on the nodes it writes are no longer fresh, its chunks no longer FRESH.
    enum class CommitScope {
        Data,     // everything written is durable once the commit returns
        Mappings, // the metadata is current; data only where it must precede its mapping
    };
    struct CommitBatch {
        bool metadata { false };   // false: the members are only flushed
        bool flush_data { false }; // flush the members before the superblock (else durable writes)
        u64 generation { 0 };
        u64 next_volume_id { 0 };
        std::vector<MetadataWrite> blocks; // fresh nodes and the volume table
        std::vector<u64> table;            // the new volume table's blocks, in order
        SpaceMap::CommitSet space;         // chunks and blocks free once it landed
        std::vector<u64> touched_nodes;    // Node::in_flight until then
    };
    enum class Reserve {
        Data,   // leave the whole reserve
        Node,   // may use the part of the reserve that is not kept for commits
        Commit, // may use everything
    };

    ThinPool(std::string name, Uuid uuid, PoolLayout layout);

    // thin_pool_commit.cpp: commits. commit_locked needs lock (on m_lock) held and releases it
    // while the commit's writes and flushes run; it holds it again when it returns.
    ErrorOr<void> commit_locked(std::unique_lock<std::shared_mutex>& lock, CommitScope scope = CommitScope::Data);
    ErrorOr<std::optional<CommitBatch>> gather_commit(CommitScope scope); // nullopt: nothing to commit
    ErrorOr<void> write_commit(CommitBatch& batch);      // without m_lock
    void land_commit(CommitBatch& batch);
    // Waits (releasing lock meanwhile) until no commit is in flight and the zeroer is not
    // flushing: the I/O that runs without the lock. Whatever changes the layout's members or reads
    // the committed metadata back calls it first, and keeps the lock after.
    void wait_for_unlocked_io(std::unique_lock<std::shared_mutex>& lock);

    // thin_pool.cpp: state, volumes, members
    ErrorOr<void> load(Superblock const& superblock);
    ErrorOr<void> load_tree(u64 ref, u32 level);
    void grow_chunk_tables();
    ErrorOr<void> check_usable() const;
    VolumeInfo* find_volume(std::string const& name);
    VolumeInfo const* find_volume(std::string const& name) const;
    ErrorOr<VolumeInfo*> writable_volume(u64 id, char const* what);
    void background_loop();
    // The zeroer's thread: keeps ZEROED_RESERVE_CHUNKS free chunks zeroed ahead of need.
    void zeroer_loop();
    // Zeroes one batch of free chunks; false when there was nothing to do.
    ErrorOr<bool> zero_step();
    ErrorOr<bool> deletion_step();
    std::optional<u32> member_index_locked(MemberDisk& disk) const;
    // Copies the rest of Rebuilding member `index` in ranges, records its position about once a
    // second, and makes it healthy (committed). Without the pool lock; one rebuild at a time.
    ErrorOr<void> run_rebuild(u32 index, std::function<void(u64, u64)> const& progress);
    ErrorOr<void> add_members_locked(std::unique_lock<std::shared_mutex>& lock, SegmentKind kind, u64 stripe_size, std::vector<std::unique_ptr<MemberDisk>> disks, bool force);

    // thin_pool_space.cpp: the free space kept for metadata, over m_space, and the zeroer
    u64 reserve_chunks(Reserve level) const;
    static u64 reserve_chunks_for(Reserve level, u64 volumes);
    // ENOSPC unless the commit after adding a volume, and the commit after that, can write the
    // larger volume table: checked before a volume or snapshot is added, so that neither its
    // commit nor a later one (a removal that would free space) fails for lack of space.
    ErrorOr<void> check_room_for_volume() const;
    ErrorOr<u64> allocate_metadata_block(Reserve level);

    // thin_pool_tree.cpp: the mapping trees
    Node& node(u64 ref) { return m_nodes.at(ref - 1); }
    Node const& node(u64 ref) const { return m_nodes.at(ref - 1); }
    static u64 child_index(u64 chunk, u32 level);
    static u64 span_of(u32 level); // chunks under one node of this level
    // The leaf entry for chunk (0: unmapped) and whether every node on the way has one owner.
    std::pair<u64, bool> lookup(u64 root, u64 chunk) const;
    // Writes under the shared lock, concurrently with reads and other such writes, when every
    // chunk the range touches is mapped, writable in place and not mirrored: nothing in the
    // metadata changes, and a single copy cannot diverge from another.
    // false (nothing written): some chunk must be allocated or copied first, under the exclusive lock.
    ErrorOr<bool> write_in_place(u64 id, u64 offset, std::span<u8 const> data);
    // Returns ref (or a copy of it, or a new empty node for 0) as a node this transaction may
    // change in place, updating reference counts; the caller stores the result where ref was.
    ErrorOr<u64> make_writable(u64 ref, u32 level, Reserve reserve);
    ErrorOr<u64*> writable_leaf_entry(VolumeInfo& volume, u64 chunk);
    static constexpr u32 DATA_LEVEL = ~u32 { 0 }; // unref(ref, DATA_LEVEL): ref is a data chunk + 1
    void unref(u64 ref, u32 level);
    // Records that a node lost an owner and kept others (Node::touched).
    void note_owner_dropped(u64 ref);
    // Unmaps chunks [first, end) under ref (a node of level covering chunks from base).
    ErrorOr<void> unmap(u64& ref, u32 level, u64 base, u64 first, u64 end, Reserve reserve);
    std::optional<u64> next_mapped(u64 ref, u32 level, u64 base, u64 from) const;

    // thin_pool_io.cpp: the data paths
    ErrorOr<VolumeInfo*> checked_range(u64 id, u64 offset, u64 length, char const* what);
    ErrorOr<void> write_chunk(VolumeInfo& volume, u64 chunk, u64 within, std::span<u8 const> data);
    ErrorOr<void> zero_range(u64 id, u64 offset, u64 length, bool unmap_whole_chunks);

    std::string m_name;
    Uuid m_uuid;
    PoolLayout m_layout;

    mutable std::shared_mutex m_lock; // guards everything below
    u64 m_generation { 0 };
    u64 m_next_volume_id { 1 };
    std::map<u64, VolumeInfo> m_volumes;
    std::unordered_map<u64, Node> m_nodes; // by block
    std::vector<u64> m_fresh_nodes;
    SpaceMap m_space;
    std::vector<u64> m_touched_nodes;  // blocks of Node::touched nodes
    std::vector<u64> m_table_blocks; // the committed volume table
    bool m_commit_in_flight { false };
    bool m_zeroer_flushing { false }; // the zeroer flushes the members without the lock
    std::condition_variable_any m_commit_landed;
    bool m_dirty { false };      // metadata changed since the last commit
    std::atomic<bool> m_data_dirty { false }; // data written since the last flush (also set under the shared lock)
    // A chunk mapped since the last commit gathered holds data that must be durable before the
    // metadata that maps it: commit_mappings() then flushes the members too.
    bool m_mapped_data_needs_flush { false };
    std::optional<Error> m_broken; // a commit failed half-way: only reads are served
    bool m_closed { false };
    std::chrono::steady_clock::time_point m_last_commit;
    std::map<u64, std::weak_ptr<ThinVolume>> m_open_volumes;

    std::mutex m_background_mutex;
    std::condition_variable m_background_wake;
    bool m_background_stop { false };
    std::thread m_background;
    std::thread m_zeroer;
    std::thread m_rebuilder;          // resumes a rebuild found at open
    std::mutex m_rebuild_mutex;       // held while a rebuild runs
    std::atomic<bool> m_rebuild_stop { false };
};

} // namespace kasou::storage
