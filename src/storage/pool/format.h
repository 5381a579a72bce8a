#pragma once

// The on-disk format of a pool (docs/storage.md describes it for people). All integers are
// little-endian; every block starts with a BlockHeader whose crc is CRC-32C of the whole block with
// the crc field zeroed, so a torn or stray write is detected rather than believed.
//
// Each member disk starts with a MEMBER_HEADER_SIZE area: its label in block 0, two superblock
// slots in blocks 1 and 2, and, on a mirror's members, the write-intent bitmap in block 3. The rest of every member is mapped by the pool's segments into one
// logical address space, cut into CHUNK_SIZE chunks; a chunk holds either volume data or
// BLOCK_SIZE metadata blocks (mapping-tree nodes and the volume table).

#include <array>
#include <bit>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage {

static_assert(std::endian::native == std::endian::little, "the pool format is written little-endian");

constexpr u64 BLOCK_SIZE = 4 * KiB;
constexpr u64 CHUNK_SIZE = 64 * KiB;
constexpr u64 BLOCKS_PER_CHUNK = CHUNK_SIZE / BLOCK_SIZE;
constexpr u64 MEMBER_HEADER_SIZE = 64 * KiB;
constexpr u64 LABEL_OFFSET = 0;
constexpr u64 SUPERBLOCK_OFFSET = BLOCK_SIZE; // slot s at SUPERBLOCK_OFFSET + s * BLOCK_SIZE
constexpr u64 INTENT_BITMAP_OFFSET = 3 * BLOCK_SIZE;
constexpr u32 MAX_MEMBERS = 32;
constexpr u32 MAX_SEGMENTS = 32;
constexpr u32 FORMAT_VERSION = 1;
constexpr u64 MIN_STRIPE_SIZE = 4 * KiB; // a striped segment's stripe size is a power of two in this range
constexpr u64 MAX_STRIPE_SIZE = 4 * MiB;
constexpr u32 MIN_MIRROR_COPIES = 2;
constexpr u32 MAX_MIRROR_COPIES = 3;
constexpr size_t NAME_LENGTH = 64; // names are at most NAME_LENGTH - 1 bytes

constexpr u64 LABEL_MAGIC = 0x4c4542414c50534bULL;       // "KSPLABEL"
constexpr u64 SUPERBLOCK_MAGIC = 0x524550555350534bULL;  // "KSPSUPER"
constexpr u64 NODE_MAGIC = 0x45444f4e5450534bULL;        // "KSPTNODE"
constexpr u64 VOLUME_TABLE_MAGIC = 0x42544c4f5650534bULL; // "KSPVOLTB"
constexpr u64 INTENT_BITMAP_MAGIC = 0x544e544e4950534bULL; // "KSPINTNT"

using Block = std::array<u8, BLOCK_SIZE>;

struct Uuid {
    std::array<u8, 16> bytes {};
    static ErrorOr<Uuid> random();
    std::string to_string() const;
    bool operator==(Uuid const&) const = default;
};

struct BlockHeader {
    u64 magic;
    u32 crc;
    u32 version;
};

enum class SegmentKind : u32 {
    Linear = 1,
    Striped = 2,
    Mirror = 3,
};

// "linear", "striped" or "mirror", as the commands spell a layout.
char const* layout_name(SegmentKind kind);

enum class MemberState : u32 {
    Healthy = 0,
    Failed = 1,
    // A mirror copy being rebuilt from the healthy ones: the superblock's rebuilt[] entry says how
    // many bytes of its segment are copied (and durable on it); it is written like a healthy
    // copy but never read until it is healthy.
    Rebuilding = 2,
};

struct MemberLabel {
    BlockHeader header;
    Uuid pool_uuid;
    Uuid member_uuid;
    char pool_name[NAME_LENGTH];
};

struct MemberEntry {
    Uuid uuid;
    u64 usable_size; // bytes after MEMBER_HEADER_SIZE used by its segment
    MemberState state;
    u32 reserved;
};

struct SegmentEntry {
    SegmentKind kind;
    u32 first_member; // members [first_member, first_member + width) of the member table
    u32 width;
    u32 reserved;
    u64 stripe_size; // striped: bytes per member before moving to the next
    u64 reserved2;
};

struct Superblock {
    BlockHeader header;
    u64 generation;
    Uuid pool_uuid;
    char pool_name[NAME_LENGTH];
    u64 volume_table; // first volume-table block + 1; 0: no volumes
    u64 next_volume_id;
    u32 member_count;
    u32 segment_count;
    MemberEntry members[MAX_MEMBERS];
    SegmentEntry segments[MAX_SEGMENTS];
    u64 rebuilt[MAX_MEMBERS]; // a Rebuilding member: bytes of its segment copied; others 0
};

// Mapping-tree node: level 0 entries are data chunk + 1, higher levels child node block + 1;
// 0 is "nothing here".
constexpr u64 NODE_FANOUT = (BLOCK_SIZE - 64) / sizeof(u64);
constexpr u32 TREE_DEPTH = 3; // root level 2 .. leaves level 0: NODE_FANOUT^3 chunks (~8 PiB)
constexpr u64 MAX_VOLUME_CHUNKS = NODE_FANOUT * NODE_FANOUT * NODE_FANOUT;

struct NodeHeader {
    BlockHeader header;
    u64 block; // where the node belongs: a node read from elsewhere is misdirected
    u32 level;
    u32 reserved;
    u64 generation; // superblock generation that wrote it
    u8 padding[24];
};
static_assert(sizeof(NodeHeader) == 64);

enum VolumeFlags : u32 {
    VOLUME_READ_ONLY = 1,
    VOLUME_DELETING = 2, // removed by the user, its tree is being released in the background
};

struct VolumeRecord {
    u64 id;
    u64 size;
    u64 root; // root node block + 1; 0: nothing mapped
    u64 origin_id; // the volume it was snapshotted or cloned from; 0: none
    u64 created; // unix seconds
    u32 flags;
    u32 reserved;
    char name[NAME_LENGTH];
    u8 padding[16];
};
static_assert(sizeof(VolumeRecord) == 128);

struct VolumeTableHeader {
    BlockHeader header;
    u64 block;
    u64 next; // next volume-table block + 1; 0: last
    u32 count;
    u32 reserved;
    u8 padding[24];
};
static_assert(sizeof(VolumeTableHeader) == 64);
constexpr u64 VOLUMES_PER_TABLE_BLOCK = (BLOCK_SIZE - sizeof(VolumeTableHeader)) / sizeof(VolumeRecord);

// The write-intent bitmap of a mirror segment, in block 3 of each of its members: bit r set means
// region r (region_size bytes of the segment) may have been written since its copies last agreed
// durably. A bit is set, durably, before the first write to its region; bits are cleared after a
// flush. After an unclean shutdown only the regions whose bits are set are copied between copies.
struct IntentBitmapHeader {
    BlockHeader header;
    Uuid member_uuid;  // the member that holds it: a bitmap read from elsewhere is misdirected
    u64 sequence;      // bumped at every write of the bitmap
    u64 segment_size;  // bytes of the segment (the member's usable size)
    u64 region_size;   // a power of two from MIN_INTENT_REGION
    u32 regions;       // ceil(segment_size / region_size), at most MAX_INTENT_REGIONS
    u32 reserved;
};
static_assert(sizeof(IntentBitmapHeader) == 64);
constexpr u64 MIN_INTENT_REGION = 4 * MiB;
constexpr u64 MAX_INTENT_REGIONS = (BLOCK_SIZE - sizeof(IntentBitmapHeader)) * 8;

static_assert(sizeof(MemberLabel) <= BLOCK_SIZE);
static_assert(sizeof(Superblock) <= BLOCK_SIZE);

// Fills in magic, version and crc of the block's header.
void seal_block(Block& block, u64 magic);
// Checks magic, version and crc; the error names what (e.g. "superblock slot 1 of /dev/sdb").
ErrorOr<void> verify_block(Block const& block, u64 magic, std::string_view what);

template<class T>
T const& view_as(Block const& block)
{
    static_assert(sizeof(T) <= BLOCK_SIZE);
    return *reinterpret_cast<T const*>(block.data());
}
template<class T>
T& view_as(Block& block)
{
    static_assert(sizeof(T) <= BLOCK_SIZE);
    return *reinterpret_cast<T*>(block.data());
}

// A superblock's fields checked against each other and the format's limits before anything uses
// them (its checksum only proves it was written whole, not that its writer was kasou): member and
// segment counts, member states and sizes, segments that cover the member table in order with no
// member twice, widths and stripe sizes per layout, sizes that do not overflow, the volume-table
// pointer inside the pool, the generation and next volume id. Returns the pool's logical size; the
// error starts "pool superblock:" and names the field.
ErrorOr<u64> validate_superblock(Superblock const& superblock);
// A member label's fields (its pool name and identities), once its checksum is verified.
ErrorOr<void> validate_label(MemberLabel const& label, std::string_view disk_name);

// Names of pools and volumes: 1 to 63 bytes of UTF-8, not starting with '.' or '-': ASCII letters,
// digits and _ . + -, and any character beyond ASCII but the C1 controls. A name never holds a
// control character, a space or '/', so it prints as it is and fits in a path.
ErrorOr<void> validate_name(std::string_view name, std::string_view what);
void copy_name(char (&out)[NAME_LENGTH], std::string_view name);
std::string name_of(char const (&field)[NAME_LENGTH]);

} // namespace kasou::storage
