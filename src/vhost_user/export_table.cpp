#include "vhost_user/export_table.h"

#include <fmt/format.h>

#include "base/log.h"
#include "base/try.h"
#include "storage/pool/pool_control.h"

namespace kasou::vhost_user {

namespace {

constexpr char const* OPS[] = { "vhost-user-export", "vhost-user-unexport", "vhost-user-list" };

} // namespace

ExportTable::ExportTable(storage::PoolHandle& pool, BlkBackendOptions defaults)
    : m_pool(pool)
    , m_defaults(std::move(defaults))
{
}

ExportTable::~ExportTable()
{
    if (m_control) {
        for (auto const* op : OPS)
            m_control->answer_op(op, nullptr);
    }
    std::lock_guard lock(m_lock);
    m_exports.clear();
}

ErrorOr<void> ExportTable::add(std::string const& volume, std::string const& path, u16 queues)
{
    if (path.empty() || path.front() != '/')
        return make_error(fmt::format("vhost-user socket '{}' must be an absolute path", path));
    std::lock_guard lock(m_lock);
    if (m_exports.contains(path))
        return tl::unexpected(Error::from_string(fmt::format("{} is already a vhost-user export", path), ErrorKind::AlreadyExists));
    auto device = TRY(m_pool.volume(volume).map_error([&](Error const& error) { return error.with_prefix(fmt::format("{}/{}", m_pool.name(), volume)); }));
    auto options = m_defaults;
    if (queues != 0)
        options.queues = queues;
    options.serial = volume.substr(0, 20);
    auto exported = TRY(BlkExport::start(path, std::move(device), options));
    m_exports.emplace(path, Entry { volume, std::move(exported) });
    spdlog::info("pool {}: volume {} exported over vhost-user on {} ({} queues)", m_pool.name(), volume, path, options.queues);
    return {};
}

ErrorOr<void> ExportTable::remove(std::string const& path)
{
    std::lock_guard lock(m_lock);
    auto found = m_exports.find(path);
    if (found == m_exports.end())
        return tl::unexpected(Error::from_string(fmt::format("{} is not a vhost-user export of pool {}", path, m_pool.name()), ErrorKind::NotFound));
    m_exports.erase(found);
    spdlog::info("pool {}: vhost-user export {} removed", m_pool.name(), path);
    return {};
}

ErrorOr<size_t> ExportTable::remove_volume(std::string const& volume)
{
    std::lock_guard lock(m_lock);
    size_t removed = std::erase_if(m_exports, [&](auto const& entry) { return entry.second.volume == volume; });
    if (removed == 0)
        return tl::unexpected(Error::from_string(fmt::format("volume {} of pool {} has no vhost-user export", volume, m_pool.name()), ErrorKind::NotFound));
    spdlog::info("pool {}: {} vhost-user export(s) of {} removed", m_pool.name(), removed, volume);
    return removed;
}

void ExportTable::attach(storage::PoolControlServer& control)
{
    m_control = &control;
    for (auto const* op : OPS)
        control.answer_op(op, [this](nlohmann::json const& request) { return answer(request); });
}

nlohmann::json ExportTable::answer(nlohmann::json const& request)
{
    auto refuse = [](std::string const& why) { return nlohmann::json { { "error", why } }; };
    auto text = [&](char const* key) -> std::optional<std::string> {
        if (!request.contains(key) || !request[key].is_string())
            return std::nullopt;
        return request[key].get<std::string>();
    };
    auto op = request["op"].get<std::string>();
    if (op == "vhost-user-list") {
        std::lock_guard lock(m_lock);
        auto list = nlohmann::json::array();
        for (auto const& [path, entry] : m_exports)
            list.push_back({ { "volume", entry.volume }, { "socket", path } });
        return { { "ok", true }, { "exports", list } };
    }
    if (op == "vhost-user-export") {
        auto volume = text("volume");
        auto socket = text("socket");
        u16 queues = 0;
        if (request.contains("queues")) {
            if (!request["queues"].is_number_unsigned() || request["queues"].get<u64>() == 0 || request["queues"].get<u64>() > 256)
                return refuse("\"queues\" must be a number from 1 to 256");
            queues = static_cast<u16>(request["queues"].get<u64>());
        }
        if (!volume || !socket)
            return refuse("vhost-user-export needs \"volume\" and \"socket\" strings");
        if (auto added = add(*volume, *socket, queues); !added)
            return refuse(added.error().to_string());
        return { { "ok", true } };
    }
    auto volume = text("volume");
    auto socket = text("socket");
    if (socket) {
        if (auto removed = remove(*socket); !removed)
            return refuse(removed.error().to_string());
        return { { "ok", true } };
    }
    if (!volume)
        return refuse("vhost-user-unexport needs a \"socket\" or a \"volume\" string");
    auto removed = remove_volume(*volume);
    if (!removed)
        return refuse(removed.error().to_string());
    return { { "ok", true }, { "removed", *removed } };
}

} // namespace kasou::vhost_user
