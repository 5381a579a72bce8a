#include "vhost_user/blk_export.h"

#include <filesystem>
#include <poll.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sys_event.h"
#include "base/sys_path.h"
#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"

namespace kasou::vhost_user {

ErrorOr<std::unique_ptr<BlkExport>> BlkExport::start(std::string path, std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options)
{
    // The options are checked once here, so a bad one fails the export rather than each connection.
    TRY(BlkBackend::create(disk, options));
    Fd listener = TRY(listen_unix(path, 4));
    std::error_code restricted;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, restricted);
    if (restricted) {
        (void)sys::unlink(path);
        return make_errno_error(restricted.value(), fmt::format("chmod {}", path));
    }
    auto stop = TRY(EventFd::create());
    std::unique_ptr<BlkExport> created(new BlkExport(std::move(path), std::move(listener), std::move(stop), std::move(disk), std::move(options)));
    created->m_thread = std::thread([raw = created.get()] { raw->run(); });
    return created;
}

BlkExport::BlkExport(std::string path, Fd listener, EventFd stop, std::shared_ptr<storage::BlockDevice> disk, BlkBackendOptions options)
    : m_path(std::move(path))
    , m_listener(std::move(listener))
    , m_stop(std::move(stop))
    , m_disk(std::move(disk))
    , m_options(std::move(options))
{
}

BlkExport::~BlkExport()
{
    (void)m_stop.signal();
    if (m_thread.joinable())
        m_thread.join();
    (void)sys::unlink(m_path);
}

void BlkExport::run()
{
    for (;;) {
        pollfd fds[2] = { { .fd = m_listener.get(), .events = POLLIN, .revents = 0 }, { .fd = m_stop.fd(), .events = POLLIN, .revents = 0 } };
        auto ready = sys::poll(fds, 2, -1);
        if (!ready) {
            spdlog::error("vhost-user export {}: {}", m_path, ready.error().to_string());
            return;
        }
        if (fds[1].revents)
            return;
        if (!fds[0].revents)
            continue;
        auto connection = sys::accept(m_listener.get());
        if (!connection) {
            spdlog::warn("vhost-user export {}: {}", m_path, connection.error().to_string());
            continue;
        }
        serve(std::move(*connection));
    }
}

void BlkExport::serve(Fd connection)
{
    auto backend = BlkBackend::create(m_disk, m_options);
    if (!backend) {
        spdlog::error("vhost-user export {}: {}", m_path, backend.error().to_string());
        return;
    }
    spdlog::info("vhost-user export {}: front-end connected", m_path);
    auto ended = [&]() -> ErrorOr<void> {
        for (;;) {
            auto raw = TRY(read_message(connection.get(), m_stop.fd()));
            if (!raw)
                return {};
            auto message = TRY(parse_message(std::move(*raw)));
            auto request = message.request;
            bool ack = message.need_reply && (*backend)->reply_ack();
            auto reply = (*backend)->handle(std::move(message));
            if (!reply) {
                // Tell the front-end it failed, when it asked, before the connection closes.
                if (ack) {
                    u64 failed = 1;
                    (void)send_reply(connection.get(), request, std::span(reinterpret_cast<u8 const*>(&failed), sizeof(failed)));
                }
                return tl::unexpected(reply.error());
            }
            if (*reply)
                TRY(send_reply(connection.get(), request, **reply));
            else if (ack) {
                u64 success = 0;
                TRY(send_reply(connection.get(), request, std::span(reinterpret_cast<u8 const*>(&success), sizeof(success))));
            }
        }
    }();
    if (!ended)
        spdlog::warn("vhost-user export {}: closing the connection: {}", m_path, ended.error().to_string());
    else
        spdlog::info("vhost-user export {}: front-end disconnected", m_path);
}

} // namespace kasou::vhost_user
