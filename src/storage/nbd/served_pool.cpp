#include "storage/nbd/served_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/sys_process.h"
#include "base/try.h"
#include "base/unix_socket.h"
#include "storage/pool/registry.h"

namespace kasou::storage::nbd {

namespace {

// How long a started server may take to open its pool and listen.
constexpr int START_TIMEOUT_MS = 30'000;

ErrorOr<Fd> open_lock(std::string const& path)
{
    return sys::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

// Starts `kasou pool serve POOL --auto` and waits until it listens; its error when it cannot.
ErrorOr<void> start_server(std::string const& state_dir, std::string const& pool, std::string const& kasou_binary)
{
    int fds[2];
    TRY(sys::pipe(fds, O_CLOEXEC));
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);
    std::string log = pool_serve_log_path(state_dir, pool);
    spdlog::info("pool {}: starting its server (kasou pool serve {} --auto; log {})", pool, pool, log);
    TRY(sys::spawn_daemon({ kasou_binary, "--state-dir", state_dir, "pool", "serve", pool, "--auto", "--ready-fd", std::to_string(write_end.get()) },
        log, write_end.get()));
    write_end.reset(); // the server holds the only write end now: its end of file means it is gone
    std::string said;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(START_TIMEOUT_MS);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        pollfd readable { .fd = read_end.get(), .events = POLLIN, .revents = 0 };
        if (left <= 0 || TRY(sys::poll(&readable, 1, static_cast<int>(left))) == 0)
            return make_error(ErrorKind::TimedOut, fmt::format("pool {}: its server did not start within {} ms (see {})", pool, START_TIMEOUT_MS, log));
        char buffer[512];
        auto n = TRY(sys::read(read_end.get(), buffer, sizeof(buffer)));
        if (n == 0)
            break;
        said.append(buffer, n);
    }
    if (said == "ready\n")
        return {};
    // The server failed before it listened: its last log line says why.
    auto text = sys::read_file(log);
    std::string why = "it exited";
    if (text) {
        std::string_view rest = *text;
        while (!rest.empty() && rest.back() == '\n')
            rest.remove_suffix(1);
        why = std::string(rest.substr(rest.rfind('\n') == std::string_view::npos ? 0 : rest.rfind('\n') + 1));
    }
    return make_error(ErrorKind::Unsupported, fmt::format("pool {}: its server could not start: {}", pool, why));
}

} // namespace

std::string pool_socket_path(std::string const& state_dir, std::string const& pool) { return state_dir + "/locks/" + pool + ".nbd.sock"; }

std::string pool_serve_lock_path(std::string const& state_dir, std::string const& pool) { return state_dir + "/locks/" + pool + ".serve.lock"; }

std::string pool_serve_auto_path(std::string const& state_dir, std::string const& pool) { return state_dir + "/locks/" + pool + ".serve.auto"; }

std::string pool_serve_log_path(std::string const& state_dir, std::string const& pool) { return state_dir + "/locks/" + pool + ".serve.log"; }

PoolLease::PoolLease(std::string state_dir, std::string pool, Fd users)
    : m_state_dir(std::move(state_dir))
    , m_pool(std::move(pool))
    , m_users(std::move(users))
{
}

ErrorOr<PoolLease> PoolLease::take(std::string const& state_dir, std::string const& pool)
{
    TRY(sys::mkdir_all(state_dir + "/locks", 0755));
    Fd users = TRY(open_lock(state_dir + "/locks/" + pool + ".users").map_error([&](Error const& e) { return e.with_prefix(fmt::format("pool {}", pool)); }));
    TRY(sys::flock(users.get(), LOCK_SH));
    return PoolLease(state_dir, pool, std::move(users));
}

PoolLease::~PoolLease()
{
    if (!m_users.valid())
        return; // moved from
    (void)sys::flock(m_users.get(), LOCK_UN);
    if (!sys::flock(m_users.get(), LOCK_EX | LOCK_NB))
        return; // others still use the pool
    (void)sys::flock(m_users.get(), LOCK_UN);
    // The last user: an auto-started server now stops and closes the pool; wait for that, so the
    // pool is free when this process exits. A server started by hand keeps it: no wait.
    auto deadline = std::chrono::steady_clock::now() + LAST_USER_WAIT;
    while (std::chrono::steady_clock::now() < deadline) {
        struct stat st { };
        if (!sys::lstat(pool_serve_auto_path(m_state_dir, m_pool), st))
            return; // no auto-started server (any more)
        if (Registry::lock_pool(m_state_dir, m_pool))
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

ErrorOr<std::shared_ptr<BlockDevice>> attach_served_volume(std::string const& state_dir, std::string const& pool, std::string const& volume,
    std::string const& kasou_binary, ClientOptions const& options)
{
    Fd lock = TRY(open_lock(pool_serve_lock_path(state_dir, pool)));
    TRY(sys::flock(lock.get(), LOCK_EX));
    std::string socket = pool_socket_path(state_dir, pool);
    NbdUri uri { .host = {}, .port = 0, .unix_path = socket, .export_name = volume };
    auto prefixed = [&](Error const& error) { return error.with_prefix(fmt::format("vol:{}/{}", pool, volume)); };
    if (!connect_unix(socket))
        TRY(start_server(state_dir, pool, kasou_binary));
    auto device = TRY(NbdClientDevice::connect(uri, options).map_error(prefixed));
    return std::shared_ptr<BlockDevice>(std::move(device));
}

} // namespace kasou::storage::nbd
