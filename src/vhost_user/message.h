#pragma once

#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"
#include "vhost_user/protocol.h"

namespace kasou::vhost_user {

// One message as it came off the socket: its header, its payload (header.size bytes, at most
// MAX_PAYLOAD) and the descriptors passed with it (at most MAX_FDS). Nothing in it is checked yet.
struct RawMessage {
    Header header {};
    std::vector<u8> payload;
    std::vector<Fd> fds;
};

// SET_VRING_KICK / CALL / ERR: the ring and its eventfd (none when the front-end set NOFD).
struct VringFd {
    u32 index { 0 };
    Fd fd;
};

// SET_MEM_TABLE: the regions, each with the descriptor it is mapped from.
struct MemoryTable {
    std::vector<MemoryRegion> regions;
    std::vector<Fd> fds;
};

// ADD_MEM_REG / REM_MEM_REG: one region (with its descriptor when added).
struct SingleRegion {
    MemoryRegion region {};
    Fd fd;
};

// GET_CONFIG / SET_CONFIG: a range of the device's configuration space, and for SET_CONFIG the bytes.
struct ConfigRange {
    u32 offset { 0 };
    u32 size { 0 };
    u32 flags { 0 };
    std::vector<u8> data;
};

// A request whose every field was checked against the spec's shape for it: the payload size is
// the one the request has, counts and fd counts agree, reserved bits are clear, the offset and size
// of a config range lie within MAX_CONFIG_SIZE. What depends on the back-end's state (a ring
// index against its queue count, addresses against the memory table) is checked by the back-end.
struct Message {
    Request request {};
    bool need_reply { false };
    std::variant<std::monostate, u64, VringState, VringAddress, VringFd, MemoryTable, SingleRegion, ConfigRange> body;
};

// Checks a raw message and gives it its typed form; a request kasou does not know or does not
// offer, or any field out of shape, is an error naming the request and the field.
ErrorOr<Message> parse_message(RawMessage raw);

// Reads one message from the front-end's socket `fd`, waiting for it (and each part of it) while
// `stop_fd` stays unreadable. nullopt when the front-end closed the connection between messages
// or stop_fd became readable; an error when it closed in the middle of one, sent a payload larger
// than MAX_PAYLOAD or more than MAX_FDS descriptors.
ErrorOr<std::optional<RawMessage>> read_message(int fd, int stop_fd);
// Sends a reply to `request`: the header (reply flag set) and the payload.
ErrorOr<void> send_reply(int fd, Request request, std::span<u8 const> payload);
// Sends a front-end's request with its descriptors (kasou's own front-end, and the tests).
ErrorOr<void> send_request(int fd, Request request, u32 flags, std::span<u8 const> payload, std::span<int const> fds);
// Reads the back-end's reply to `request` (a reply, of the right request code), waiting without end.
ErrorOr<std::vector<u8>> read_reply(int fd, Request request);

} // namespace kasou::vhost_user
