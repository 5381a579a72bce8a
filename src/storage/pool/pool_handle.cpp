#include "storage/pool/pool_handle.h"

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/try.h"
#include "storage/pool/disk_set.h"
#include "storage/pool/file_member_disk.h"
#include "storage/pool/pool_control.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {

PoolHandle::PoolHandle(std::string name, std::shared_ptr<ThinPool> pool, Fd lock, std::unique_ptr<PoolControlServer> control)
    : m_name(std::move(name))
    , m_pool(std::move(pool))
    , m_lock(std::move(lock))
    , m_control(std::move(control))
{
}

PoolHandle::PoolHandle(PoolHandle&&) noexcept = default;

PoolHandle& PoolHandle::operator=(PoolHandle&& other) noexcept
{
    if (this != &other) {
        if (auto result = close(); !result)
            spdlog::error("pool {}: {}", m_name, result.error().to_string());
        m_name = std::move(other.m_name);
        m_pool = std::move(other.m_pool);
        m_lock = std::move(other.m_lock);
        m_control = std::move(other.m_control);
    }
    return *this;
}

PoolHandle::~PoolHandle()
{
    if (auto result = close(); !result)
        spdlog::error("pool {}: {}", m_name, result.error().to_string());
}

ErrorOr<PoolHandle> PoolHandle::open(std::string const& state_dir, std::string const& name, Control control_wanted)
{
    auto record = TRY(Registry::find(state_dir, name));
    Fd lock = TRY(Registry::lock_pool(state_dir, name));
    TRY(check_distinct_disks(record.disks).map_error([&](Error const& error) { return error.with_prefix(fmt::format("pool {} in {}/pools.json", name, state_dir)); }));
    std::vector<std::unique_ptr<MemberDisk>> disks;
    for (auto const& path : record.disks) {
        auto disk = FileMemberDisk::open(path);
        // A disk another process holds is refused: opening the pool without it would write it
        // off as failed. One that is gone is left to the pool to judge: a mirror runs degraded.
        if (!disk && disk.error().code() == EBUSY)
            return tl::unexpected(disk.error());
        if (!disk) {
            spdlog::warn("pool {}: disk {} cannot be opened: {}", name, path, disk.error().to_string());
            continue;
        }
        disks.push_back(std::move(*disk));
    }
    if (disks.empty())
        return make_error(ErrorKind::Io, fmt::format("none of the disks of pool {} can be opened", name));
    auto pool = TRY(ThinPool::open(std::move(disks)).map_error([&](Error const& error) { return error.with_prefix(fmt::format("pool {}", name)); }));
    if (pool->uuid().to_string() != record.uuid)
        return make_error(fmt::format("the disks registered for pool {} now hold pool '{}' ({}), not {}", name, pool->name(), pool->uuid().to_string(), record.uuid));
    pool->start_background();
    std::unique_ptr<PoolControlServer> control;
    if (control_wanted == Control::Answer) {
        auto started = PoolControlServer::start(state_dir, name, pool);
        if (started)
            control = std::move(*started);
        else
            spdlog::warn("pool {}: no control socket ({}): `kasou pool add` cannot grow it while this process holds it", name, started.error().to_string());
    }
    return PoolHandle(name, std::move(pool), std::move(lock), std::move(control));
}

ErrorOr<std::shared_ptr<BlockDevice>> PoolHandle::volume(std::string const& volume_name)
{
    return m_pool->open_volume(volume_name);
}

std::vector<std::string> PoolHandle::volume_names() const
{
    std::vector<std::string> names;
    for (auto const& volume : m_pool->volumes())
        names.push_back(volume.name);
    return names;
}

ErrorOr<void> PoolHandle::commit()
{
    return m_pool->commit();
}

ErrorOr<void> PoolHandle::close()
{
    if (!m_pool)
        return {};
    // No request may run while the pool closes.
    if (m_control)
        m_control->stop();
    auto result = m_pool->close();
    m_pool.reset();
    m_control.reset();
    m_lock = Fd();
    return result;
}

ErrorOr<std::pair<std::string, std::string>> parse_volume_path(std::string_view text)
{
    auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() || text.find('/', slash + 1) != std::string_view::npos)
        return make_error(fmt::format("'{}' is not POOL/VOLUME (for example tank/disk0)", text));
    return std::pair { std::string(text.substr(0, slash)), std::string(text.substr(slash + 1)) };
}

} // namespace kasou::storage
