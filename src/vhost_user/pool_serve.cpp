#include "vhost_user/pool_serve.h"

#include <filesystem>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::vhost_user {

ErrorOr<std::pair<std::string, std::string>> parse_vhost_user_export(std::string const& text)
{
    auto equals = text.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == text.size())
        return make_error(fmt::format("--vhost-user '{}': expected VOL=SOCKET", text));
    std::error_code failed;
    auto path = std::filesystem::absolute(text.substr(equals + 1), failed);
    if (failed)
        return make_errno_error(failed.value(), fmt::format("--vhost-user {}", text));
    return std::pair { text.substr(0, equals), path.string() };
}

ErrorOr<std::shared_ptr<ExportTable>> attach_exports(storage::PoolHandle& pool, BlkBackendOptions const& defaults, std::vector<std::string> const& exports)
{
    auto table = std::make_shared<ExportTable>(pool, defaults);
    for (auto const& text : exports) {
        auto [volume, path] = TRY(parse_vhost_user_export(text));
        TRY(table->add(volume, path, 0));
    }
    if (pool.control())
        table->attach(*pool.control());
    return table;
}

} // namespace kasou::vhost_user
