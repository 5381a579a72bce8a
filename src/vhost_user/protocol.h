#pragma once

#include "base/types.h"

// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): constants and the packed
// payload structures, little-endian as the host is.
namespace kasou::vhost_user {

// Front-end requests ("Front-end message types").
enum class Request : u32 {
    GET_FEATURES = 1,
    SET_FEATURES = 2,
    SET_OWNER = 3,
    RESET_OWNER = 4,
    SET_MEM_TABLE = 5,
    SET_LOG_BASE = 6,
    SET_LOG_FD = 7,
    SET_VRING_NUM = 8,
    SET_VRING_ADDR = 9,
    SET_VRING_BASE = 10,
    GET_VRING_BASE = 11,
    SET_VRING_KICK = 12,
    SET_VRING_CALL = 13,
    SET_VRING_ERR = 14,
    GET_PROTOCOL_FEATURES = 15,
    SET_PROTOCOL_FEATURES = 16,
    GET_QUEUE_NUM = 17,
    SET_VRING_ENABLE = 18,
    GET_CONFIG = 24,
    SET_CONFIG = 25,
    RESET_DEVICE = 34,
    GET_MAX_MEM_SLOTS = 36,
    ADD_MEM_REG = 37,
    REM_MEM_REG = 38,
};

// The name of a request code ("SET_MEM_TABLE"), or "unknown request N".
char const* request_name(u32 request);

// Header flags: bits 0-1 the protocol version (1), bit 2 a reply, bit 3 need_reply.
constexpr u32 FLAG_VERSION_MASK = 0x3;
constexpr u32 VERSION = 0x1;
constexpr u32 FLAG_REPLY = 1u << 2;
constexpr u32 FLAG_NEED_REPLY = 1u << 3;

// Virtio feature bit 30: the back-end speaks protocol features.
constexpr u64 F_PROTOCOL_FEATURES = 1ull << 30;
// Protocol feature bits.
constexpr u64 PROTOCOL_F_MQ = 1ull << 0;
constexpr u64 PROTOCOL_F_REPLY_ACK = 1ull << 3;
constexpr u64 PROTOCOL_F_CONFIG = 1ull << 9;
constexpr u64 PROTOCOL_F_RESET_DEVICE = 1ull << 13;
constexpr u64 PROTOCOL_F_CONFIGURE_MEM_SLOTS = 1ull << 15;

// Descriptors a message may carry, and memory regions a table may hold (the spec's baseline).
constexpr size_t MAX_FDS = 8;
constexpr u32 MAX_MEMORY_REGIONS = 8;
// The largest configuration space a GET_CONFIG / SET_CONFIG may name.
constexpr u32 MAX_CONFIG_SIZE = 256;
// The largest payload any request kasou accepts has (a configuration space with its header).
constexpr u32 MAX_PAYLOAD = 12 + MAX_CONFIG_SIZE;

// The payload of SET_VRING_KICK / CALL / ERR: the ring index in bits 0-7, bit 8 "no descriptor".
constexpr u64 VRING_INDEX_MASK = 0xFF;
constexpr u64 VRING_NOFD = 1ull << 8;
// SET_VRING_ADDR flags: bit 0 asks for used-ring logging (not offered).
constexpr u32 VRING_F_LOG = 1u << 0;

struct Header {
    u32 request;
    u32 flags;
    u32 size;
};
static_assert(sizeof(Header) == 12);

// Every structure below has its fields at their natural alignment: no padding, no packing needed.
struct VringState {
    u32 index;
    u32 num;
};

struct VringAddress {
    u32 index;
    u32 flags;
    u64 descriptor;
    u64 used;
    u64 available;
    u64 log;
};
static_assert(sizeof(VringAddress) == 40);

struct MemoryRegion {
    u64 guest_physical;
    u64 size;
    u64 user_address;
    u64 mmap_offset;
};
static_assert(sizeof(MemoryRegion) == 32);

// SET_MEM_TABLE: a count, padding, then the regions.
struct MemoryTableHeader {
    u32 count;
    u32 padding;
};

// GET_CONFIG / SET_CONFIG: offset and size of the range, flags, then `size` bytes.
struct ConfigHeader {
    u32 offset;
    u32 size;
    u32 flags;
};
static_assert(sizeof(ConfigHeader) == 12);

} // namespace kasou::vhost_user
