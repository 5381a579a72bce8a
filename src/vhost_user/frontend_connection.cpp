#include "vhost_user/frontend_connection.h"

#include <cstring>

#include <fmt/format.h>

#include "base/try.h"
#include "base/unix_socket.h"
#include "vhost_user/message.h"

namespace kasou::vhost_user {

namespace {

template<class T>
std::span<u8 const> bytes_of(T const& value)
{
    return { reinterpret_cast<u8 const*>(&value), sizeof(T) };
}

template<class T>
ErrorOr<T> value_of(std::vector<u8> const& bytes, Request request)
{
    if (bytes.size() != sizeof(T))
        return make_error(fmt::format("vhost-user {}: reply of {} bytes, expected {}", request_name(static_cast<u32>(request)), bytes.size(), sizeof(T)));
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
}

} // namespace

ErrorOr<FrontendConnection> FrontendConnection::connect(std::string const& path)
{
    return FrontendConnection(TRY(connect_unix(path)));
}

ErrorOr<void> FrontendConnection::request(Request code, std::span<u8 const> payload, std::span<int const> fds)
{
    TRY(send_request(m_socket.get(), code, VERSION | (m_reply_ack ? FLAG_NEED_REPLY : 0), payload, fds));
    if (!m_reply_ack)
        return {};
    u64 status = TRY(value_of<u64>(TRY(read_reply(m_socket.get(), code)), code));
    if (status != 0)
        return make_error(fmt::format("vhost-user back-end refused {}", request_name(static_cast<u32>(code))));
    return {};
}

ErrorOr<std::vector<u8>> FrontendConnection::query(Request code, std::span<u8 const> payload, size_t reply_size)
{
    TRY(send_request(m_socket.get(), code, VERSION, payload, {}));
    auto reply = TRY(read_reply(m_socket.get(), code));
    if (reply.size() != reply_size)
        return make_error(fmt::format("vhost-user {}: reply of {} bytes, expected {}", request_name(static_cast<u32>(code)), reply.size(), reply_size));
    return reply;
}

ErrorOr<u64> FrontendConnection::negotiate(u64 wanted)
{
    TRY(request(Request::SET_OWNER, {}));
    u64 offered = TRY(value_of<u64>(TRY(query(Request::GET_FEATURES, {}, 8)), Request::GET_FEATURES));
    if (!(offered & F_PROTOCOL_FEATURES))
        return make_error("vhost-user back-end does not offer protocol features");
    u64 protocol = TRY(value_of<u64>(TRY(query(Request::GET_PROTOCOL_FEATURES, {}, 8)), Request::GET_PROTOCOL_FEATURES));
    u64 needed = PROTOCOL_F_MQ | PROTOCOL_F_REPLY_ACK | PROTOCOL_F_CONFIG;
    if ((protocol & needed) != needed)
        return make_error(fmt::format("vhost-user back-end lacks protocol features {:#x}", needed & ~protocol));
    TRY(request(Request::SET_PROTOCOL_FEATURES, bytes_of(needed)));
    m_reply_ack = true;
    u64 agreed = (wanted & offered) | F_PROTOCOL_FEATURES;
    TRY(request(Request::SET_FEATURES, bytes_of(agreed)));
    return agreed;
}

ErrorOr<u16> FrontendConnection::queue_count()
{
    u64 count = TRY(value_of<u64>(TRY(query(Request::GET_QUEUE_NUM, {}, 8)), Request::GET_QUEUE_NUM));
    if (count == 0 || count > 0xFFFF)
        return make_error(fmt::format("vhost-user back-end reports {} queues", count));
    return static_cast<u16>(count);
}

ErrorOr<std::vector<u8>> FrontendConnection::config(u32 offset, u32 size)
{
    if (size > MAX_CONFIG_SIZE)
        return make_error("vhost-user GET_CONFIG: too large");
    std::vector<u8> payload(sizeof(ConfigHeader) + size);
    ConfigHeader header { .offset = offset, .size = size, .flags = 0 };
    std::memcpy(payload.data(), &header, sizeof(header));
    auto reply = TRY(query(Request::GET_CONFIG, payload, payload.size()));
    return std::vector<u8>(reply.begin() + sizeof(ConfigHeader), reply.end());
}

ErrorOr<void> FrontendConnection::set_memory(std::span<SharedRegion const> regions)
{
    if (regions.empty() || regions.size() > MAX_MEMORY_REGIONS)
        return make_error(fmt::format("vhost-user: {} memory regions to share, at most {}", regions.size(), MAX_MEMORY_REGIONS));
    std::vector<u8> payload(sizeof(MemoryTableHeader) + regions.size() * sizeof(MemoryRegion));
    MemoryTableHeader header { .count = static_cast<u32>(regions.size()), .padding = 0 };
    std::memcpy(payload.data(), &header, sizeof(header));
    std::vector<int> fds;
    for (size_t i = 0; i < regions.size(); ++i) {
        MemoryRegion region { .guest_physical = regions[i].guest_physical, .size = regions[i].size, .user_address = regions[i].user_address,
            .mmap_offset = regions[i].fd_offset };
        std::memcpy(payload.data() + sizeof(header) + i * sizeof(MemoryRegion), &region, sizeof(region));
        fds.push_back(regions[i].fd);
    }
    return request(Request::SET_MEM_TABLE, payload, fds);
}

ErrorOr<void> FrontendConnection::start_ring(u16 index, RingSetup const& ring)
{
    TRY(request(Request::SET_VRING_NUM, bytes_of(VringState { .index = index, .num = ring.size })));
    TRY(request(Request::SET_VRING_BASE, bytes_of(VringState { .index = index, .num = ring.base })));
    VringAddress address { .index = index, .flags = 0, .descriptor = ring.descriptor, .used = ring.used, .available = ring.available, .log = 0 };
    TRY(request(Request::SET_VRING_ADDR, bytes_of(address)));
    u64 call = index | (ring.call_fd < 0 ? VRING_NOFD : 0);
    if (ring.call_fd >= 0)
        TRY(request(Request::SET_VRING_CALL, bytes_of(call), std::span(&ring.call_fd, 1)));
    else
        TRY(request(Request::SET_VRING_CALL, bytes_of(call)));
    u64 kick = index;
    TRY(request(Request::SET_VRING_KICK, bytes_of(kick), std::span(&ring.kick_fd, 1)));
    TRY(request(Request::SET_VRING_ENABLE, bytes_of(VringState { .index = index, .num = 1 })));
    return {};
}

ErrorOr<u16> FrontendConnection::stop_ring(u16 index)
{
    auto state = TRY(value_of<VringState>(TRY(query(Request::GET_VRING_BASE, bytes_of(VringState { .index = index, .num = 0 }), sizeof(VringState))),
        Request::GET_VRING_BASE));
    if (state.index != index || state.num > 0xFFFF)
        return make_error(fmt::format("vhost-user GET_VRING_BASE: reply for ring {} with base {}", state.index, state.num));
    return static_cast<u16>(state.num);
}

} // namespace kasou::vhost_user
