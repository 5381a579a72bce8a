#include "vhost_user/message.h"

#include <cstring>
#include <poll.h>

#include <fmt/format.h>

#include "base/sys_event.h"
#include "base/sys_socket.h"
#include "base/try.h"

namespace kasou::vhost_user {

namespace {

template<class T>
T load(std::span<u8 const> bytes, size_t offset = 0)
{
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

Error malformed(u32 request, std::string const& why)
{
    return Error::from_string(fmt::format("vhost-user {}: {}", request_name(request), why));
}

// The payload must be exactly `size` bytes and come with exactly `fds` descriptors.
ErrorOr<void> expect_shape(RawMessage const& raw, size_t size, size_t fds)
{
    if (raw.payload.size() != size)
        return tl::unexpected(malformed(raw.header.request, fmt::format("payload of {} bytes, expected {}", raw.payload.size(), size)));
    if (raw.fds.size() != fds)
        return tl::unexpected(malformed(raw.header.request, fmt::format("{} descriptors passed, expected {}", raw.fds.size(), fds)));
    return {};
}

ErrorOr<MemoryRegion> checked_region(u32 request, MemoryRegion const& region)
{
    auto wraps = [](u64 start, u64 size) { return start + size < start; };
    if (region.size == 0 || wraps(region.guest_physical, region.size) || wraps(region.user_address, region.size)
        || wraps(region.mmap_offset, region.size))
        return tl::unexpected(malformed(request, fmt::format("memory region at {:#x} of {:#x} bytes is empty or wraps around", region.guest_physical, region.size)));
    return region;
}

} // namespace

char const* request_name(u32 request)
{
    switch (static_cast<Request>(request)) {
    case Request::GET_FEATURES: return "GET_FEATURES";
    case Request::SET_FEATURES: return "SET_FEATURES";
    case Request::SET_OWNER: return "SET_OWNER";
    case Request::RESET_OWNER: return "RESET_OWNER";
    case Request::SET_MEM_TABLE: return "SET_MEM_TABLE";
    case Request::SET_LOG_BASE: return "SET_LOG_BASE";
    case Request::SET_LOG_FD: return "SET_LOG_FD";
    case Request::SET_VRING_NUM: return "SET_VRING_NUM";
    case Request::SET_VRING_ADDR: return "SET_VRING_ADDR";
    case Request::SET_VRING_BASE: return "SET_VRING_BASE";
    case Request::GET_VRING_BASE: return "GET_VRING_BASE";
    case Request::SET_VRING_KICK: return "SET_VRING_KICK";
    case Request::SET_VRING_CALL: return "SET_VRING_CALL";
    case Request::SET_VRING_ERR: return "SET_VRING_ERR";
    case Request::GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
    case Request::SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
    case Request::GET_QUEUE_NUM: return "GET_QUEUE_NUM";
    case Request::SET_VRING_ENABLE: return "SET_VRING_ENABLE";
    case Request::GET_CONFIG: return "GET_CONFIG";
    case Request::SET_CONFIG: return "SET_CONFIG";
    case Request::RESET_DEVICE: return "RESET_DEVICE";
    case Request::GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
    case Request::ADD_MEM_REG: return "ADD_MEM_REG";
    case Request::REM_MEM_REG: return "REM_MEM_REG";
    }
    return "unknown request";
}

ErrorOr<Message> parse_message(RawMessage raw)
{
    u32 const code = raw.header.request;
    if ((raw.header.flags & FLAG_VERSION_MASK) != VERSION)
        return tl::unexpected(malformed(code, fmt::format("protocol version {}, expected {}", raw.header.flags & FLAG_VERSION_MASK, VERSION)));
    if (raw.header.flags & ~(FLAG_VERSION_MASK | FLAG_NEED_REPLY))
        return tl::unexpected(malformed(code, fmt::format("flags {:#x} (a reply, or reserved bits) in a request", raw.header.flags)));
    if (raw.header.size != raw.payload.size())
        return tl::unexpected(malformed(code, "header size and payload disagree"));
    Message message;
    message.need_reply = raw.header.flags & FLAG_NEED_REPLY;
    std::span<u8 const> payload = raw.payload;
    switch (static_cast<Request>(code)) {
    case Request::GET_FEATURES:
    case Request::SET_OWNER:
    case Request::RESET_OWNER:
    case Request::GET_PROTOCOL_FEATURES:
    case Request::GET_QUEUE_NUM:
    case Request::RESET_DEVICE:
    case Request::GET_MAX_MEM_SLOTS:
        // Some front-ends send a u64 of zero with requests that carry nothing; it is ignored.
        if (raw.payload.size() != 8)
            TRY(expect_shape(raw, 0, 0));
        else
            TRY(expect_shape(raw, 8, 0));
        break;
    case Request::SET_FEATURES:
    case Request::SET_PROTOCOL_FEATURES:
        TRY(expect_shape(raw, 8, 0));
        message.body = load<u64>(payload);
        break;
    case Request::SET_VRING_NUM:
    case Request::SET_VRING_BASE:
    case Request::GET_VRING_BASE:
    case Request::SET_VRING_ENABLE:
        TRY(expect_shape(raw, sizeof(VringState), 0));
        message.body = load<VringState>(payload);
        break;
    case Request::SET_VRING_ADDR: {
        TRY(expect_shape(raw, sizeof(VringAddress), 0));
        auto address = load<VringAddress>(payload);
        if (address.flags & ~VRING_F_LOG)
            return tl::unexpected(malformed(code, fmt::format("unknown ring address flags {:#x}", address.flags)));
        message.body = address;
        break;
    }
    case Request::SET_VRING_KICK:
    case Request::SET_VRING_CALL:
    case Request::SET_VRING_ERR: {
        if (raw.payload.size() != 8)
            return tl::unexpected(malformed(code, fmt::format("payload of {} bytes, expected 8", raw.payload.size())));
        u64 value = load<u64>(payload);
        if (value & ~(VRING_INDEX_MASK | VRING_NOFD))
            return tl::unexpected(malformed(code, fmt::format("reserved bits set in {:#x}", value)));
        bool no_fd = value & VRING_NOFD;
        TRY(expect_shape(raw, 8, no_fd ? 0 : 1));
        VringFd ring { .index = static_cast<u32>(value & VRING_INDEX_MASK), .fd = {} };
        if (!no_fd)
            ring.fd = std::move(raw.fds.front());
        message.body = std::move(ring);
        break;
    }
    case Request::SET_MEM_TABLE: {
        if (raw.payload.size() < sizeof(MemoryTableHeader))
            return tl::unexpected(malformed(code, "payload shorter than its region count"));
        auto header = load<MemoryTableHeader>(payload);
        if (header.count == 0 || header.count > MAX_MEMORY_REGIONS)
            return tl::unexpected(malformed(code, fmt::format("{} memory regions, expected 1 to {}", header.count, MAX_MEMORY_REGIONS)));
        TRY(expect_shape(raw, sizeof(MemoryTableHeader) + header.count * sizeof(MemoryRegion), header.count));
        MemoryTable table;
        for (u32 i = 0; i < header.count; ++i)
            table.regions.push_back(TRY(checked_region(code, load<MemoryRegion>(payload, sizeof(MemoryTableHeader) + i * sizeof(MemoryRegion)))));
        table.fds = std::move(raw.fds);
        message.body = std::move(table);
        break;
    }
    case Request::ADD_MEM_REG:
    case Request::REM_MEM_REG: {
        bool adding = static_cast<Request>(code) == Request::ADD_MEM_REG;
        // REM_MEM_REG may come with the region's descriptor (QEMU sends it); it is not needed.
        if (adding || raw.fds.size() > 1)
            TRY(expect_shape(raw, 8 + sizeof(MemoryRegion), adding ? 1 : 0));
        else if (raw.payload.size() != 8 + sizeof(MemoryRegion))
            return tl::unexpected(malformed(code, fmt::format("payload of {} bytes, expected {}", raw.payload.size(), 8 + sizeof(MemoryRegion))));
        SingleRegion single { .region = TRY(checked_region(code, load<MemoryRegion>(payload, 8))), .fd = {} };
        if (adding)
            single.fd = std::move(raw.fds.front());
        message.body = std::move(single);
        break;
    }
    case Request::GET_CONFIG:
    case Request::SET_CONFIG: {
        if (raw.payload.size() < sizeof(ConfigHeader))
            return tl::unexpected(malformed(code, "payload shorter than its config header"));
        auto header = load<ConfigHeader>(payload);
        if (header.size > MAX_CONFIG_SIZE || header.offset > MAX_CONFIG_SIZE - header.size)
            return tl::unexpected(malformed(code, fmt::format("config range of {} bytes at {} is outside {} bytes", header.size, header.offset, MAX_CONFIG_SIZE)));
        TRY(expect_shape(raw, sizeof(ConfigHeader) + header.size, 0));
        ConfigRange range { .offset = header.offset, .size = header.size, .flags = header.flags, .data = {} };
        range.data.assign(raw.payload.begin() + sizeof(ConfigHeader), raw.payload.end());
        message.body = std::move(range);
        break;
    }
    default:
        return make_error(fmt::format("vhost-user request {} is not supported", code == 0 ? std::string("0") : fmt::format("{} ({})", code, request_name(code))));
    }
    message.request = static_cast<Request>(code);
    return message;
}

namespace {

// Waits until fd is readable (true) or stop_fd is (false).
ErrorOr<bool> wait_readable(int fd, int stop_fd)
{
    for (;;) {
        pollfd fds[2] = { { .fd = fd, .events = POLLIN, .revents = 0 }, { .fd = stop_fd, .events = POLLIN, .revents = 0 } };
        int ready = TRY(sys::poll(fds, stop_fd >= 0 ? 2 : 1, -1));
        if (ready == 0)
            continue;
        if (stop_fd >= 0 && fds[1].revents)
            return false;
        return true;
    }
}

// Reads exactly `bytes.size()` bytes; false when the peer closed before the first byte.
ErrorOr<bool> read_exact(int fd, int stop_fd, std::span<u8> bytes, std::vector<Fd>& fds, bool at_boundary)
{
    size_t done = 0;
    while (done < bytes.size()) {
        if (!TRY(wait_readable(fd, stop_fd)))
            return false;
        size_t n = TRY(sys::recv_with_fds(fd, bytes.data() + done, bytes.size() - done, fds, MAX_FDS - fds.size()));
        if (n == 0) {
            if (done == 0 && at_boundary)
                return false;
            return make_errno_error(ECONNRESET, "vhost-user: the front-end closed the connection in the middle of a message");
        }
        done += n;
    }
    return true;
}

} // namespace

ErrorOr<std::optional<RawMessage>> read_message(int fd, int stop_fd)
{
    RawMessage raw;
    if (!TRY(read_exact(fd, stop_fd, std::span(reinterpret_cast<u8*>(&raw.header), sizeof(Header)), raw.fds, true)))
        return std::optional<RawMessage> {};
    if (raw.header.size > MAX_PAYLOAD)
        return make_error(fmt::format("vhost-user {}: payload of {} bytes, more than {}", request_name(raw.header.request), raw.header.size, MAX_PAYLOAD));
    raw.payload.resize(raw.header.size);
    if (!TRY(read_exact(fd, stop_fd, raw.payload, raw.fds, false)))
        return std::optional<RawMessage> {};
    return std::optional<RawMessage>(std::move(raw));
}

ErrorOr<void> send_reply(int fd, Request request, std::span<u8 const> payload)
{
    return send_request(fd, request, VERSION | FLAG_REPLY, payload, {});
}

ErrorOr<void> send_request(int fd, Request request, u32 flags, std::span<u8 const> payload, std::span<int const> fds)
{
    std::vector<u8> bytes(sizeof(Header) + payload.size());
    Header header { .request = static_cast<u32>(request), .flags = flags, .size = static_cast<u32>(payload.size()) };
    std::memcpy(bytes.data(), &header, sizeof(header));
    if (!payload.empty())
        std::memcpy(bytes.data() + sizeof(header), payload.data(), payload.size());
    return sys::send_with_fds(fd, bytes.data(), bytes.size(), fds);
}

ErrorOr<std::vector<u8>> read_reply(int fd, Request request)
{
    auto raw = TRY(read_message(fd, -1));
    if (!raw)
        return make_errno_error(ECONNRESET, "vhost-user: the back-end closed the connection");
    if (raw->header.request != static_cast<u32>(request) || !(raw->header.flags & FLAG_REPLY))
        return make_error(fmt::format("vhost-user: expected the reply to {}, got {}", request_name(static_cast<u32>(request)), request_name(raw->header.request)));
    return std::move(raw->payload);
}

} // namespace kasou::vhost_user
