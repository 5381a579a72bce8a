#include "vhost_user/pool_serve.h"

#include <filesystem>
#include <poll.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sys_event.h"
#include "base/sys_signal.h"
#include "base/try.h"
#include "storage/pool/pool_handle.h"
#include "vhost_user/export_table.h"

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

ErrorOr<void> serve_pool(PoolServeSpec const& spec)
{
    Fd stop = TRY(sys::termination_signalfd()); // before the pool starts its threads

    auto pool = TRY(storage::PoolHandle::open(spec.state_dir, spec.pool, storage::PoolHandle::Control::Answer));
    {
        ExportTable exports(pool, spec.backend);
        for (auto const& text : spec.exports) {
            auto [volume, path] = TRY(parse_vhost_user_export(text));
            TRY(exports.add(volume, path, 0));
        }
        if (pool.control())
            exports.attach(*pool.control());
        spdlog::info("pool {}: serving (vhost-user exports are added with 'kasou vol export {}/VOL --vhost-user SOCKET')", spec.pool, spec.pool);
        for (;;) {
            pollfd wait { .fd = stop.get(), .events = POLLIN, .revents = 0 };
            if (TRY(sys::poll(&wait, 1, -1)) == 1)
                break;
        }
        spdlog::info("pool {}: stopping", spec.pool);
    }
    return pool.close();
}

} // namespace kasou::vhost_user
