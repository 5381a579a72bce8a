#include "storage/pool/fault_member_disk.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::storage {

FaultMemberDisk::FaultMemberDisk(std::string name, u64 size)
    : m_name(std::move(name))
    , m_durable(size, 0)
    , m_current(size, 0)
{
}

FaultMemberDisk::FaultMemberDisk(std::string name, std::vector<u8> image)
    : m_name(std::move(name))
    , m_durable(std::move(image))
    , m_current(m_durable)
{
}

ErrorOr<void> FaultMemberDisk::check(u64 offset, u64 length, char const* what) const
{
    if (m_failed)
        return make_errno_error(EIO, fmt::format("{} {}", what, m_name));
    if (offset > m_current.size() || length > m_current.size() - offset)
        return make_error(fmt::format("{}: {} of {} bytes at {} is past the end", m_name, what, length, offset));
    return {};
}

bool FaultMemberDisk::powered()
{
    return !m_power || m_power->fetch_sub(1) > 0;
}

ErrorOr<void> FaultMemberDisk::read(u64 offset, std::span<u8> buffer)
{
    std::lock_guard lock(m_mutex);
    if (auto result = check(offset, buffer.size(), "read"); !result)
        return result;
    std::memcpy(buffer.data(), m_current.data() + offset, buffer.size());
    return {};
}

ErrorOr<bool> FaultMemberDisk::accept_write(u64 offset, std::span<u8 const> data)
{
    TRY(check(offset, data.size(), "write"));
    if (m_writes.fetch_add(1) >= m_write_limit)
        return make_errno_error(EIO, fmt::format("write {}", m_name));
    if (!powered())
        return false;
    std::memcpy(m_current.data() + offset, data.data(), data.size());
    return true;
}

ErrorOr<void> FaultMemberDisk::write(u64 offset, std::span<u8 const> data)
{
    std::lock_guard lock(m_mutex);
    if (TRY(accept_write(offset, data)))
        m_pending.push_back({ offset, std::vector<u8>(data.begin(), data.end()) });
    return {};
}

void FaultMemberDisk::before_next_flush(std::function<void()> hook)
{
    std::lock_guard lock(m_hook_mutex);
    m_before_flush = std::move(hook);
}

ErrorOr<void> FaultMemberDisk::flush()
{
    std::function<void()> hook;
    {
        std::lock_guard lock(m_hook_mutex);
        hook = std::exchange(m_before_flush, nullptr);
    }
    if (hook)
        hook();
    std::lock_guard lock(m_mutex);
    if (m_failed)
        return make_errno_error(EIO, fmt::format("flush {}", m_name));
    if (!powered())
        return {};
    for (auto const& pending : m_pending)
        std::memcpy(m_durable.data() + pending.offset, pending.data.data(), pending.data.size());
    m_pending.clear();
    return {};
}

ErrorOr<void> FaultMemberDisk::write_durable(u64 offset, std::span<u8 const> data)
{
    std::lock_guard lock(m_mutex);
    if (!TRY(accept_write(offset, data)))
        return {};
    std::memcpy(m_durable.data() + offset, data.data(), data.size());
    // An older cached write that lands after the power cut must not undo this one where they
    // overlap: what it would put there is this write's data.
    for (auto& pending : m_pending) {
        u64 from = std::max(offset, pending.offset);
        u64 to = std::min(offset + data.size(), pending.offset + pending.data.size());
        if (from < to)
            std::memcpy(pending.data.data() + (from - pending.offset), data.data() + (from - offset), to - from);
    }
    return {};
}

bool FaultMemberDisk::is_durable_hole(u64 offset, u64 length)
{
    std::lock_guard lock(m_mutex);
    if (m_failed || offset > m_durable.size() || length > m_durable.size() - offset)
        return false;
    for (auto const& pending : m_pending) {
        if (pending.offset < offset + length && offset < pending.offset + pending.data.size())
            return false;
    }
    auto begin = m_durable.begin() + static_cast<long>(offset);
    return std::all_of(begin, begin + static_cast<long>(length), [](u8 byte) { return byte == 0; });
}

std::vector<u8> FaultMemberDisk::power_cut(std::mt19937_64& random) const
{
    std::lock_guard lock(m_mutex);
    std::vector<u8> image = m_durable;
    for (auto const& pending : m_pending) {
        if (random() % 2 == 0)
            continue;
        bool torn = random() % 4 == 0;
        for (u64 done = 0; done < pending.data.size(); done += SECTOR_SIZE) {
            if (torn && random() % 2 == 0)
                continue;
            u64 length = std::min<u64>(SECTOR_SIZE, pending.data.size() - done);
            std::memcpy(image.data() + pending.offset + done, pending.data.data() + done, length);
        }
    }
    return image;
}

std::vector<u8> FaultMemberDisk::durable_image() const
{
    std::lock_guard lock(m_mutex);
    return m_durable;
}

void FaultMemberDisk::fail_writes_after(u64 count)
{
    m_write_limit = m_writes + count;
}

} // namespace kasou::storage
