// `kasou pool serve`: the one process that holds a pool open and serves all its volumes, so that
// many VMs can use them at once (storage/nbd/served_pool.h).

#include <memory>
#include <fcntl.h>

#include "base/log.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "cmd/commands.h"
#include "storage/nbd/serve.h"
#include "storage/nbd/served_pool.h"

namespace kasou::cmd {

namespace {

struct PoolServeOptions {
    std::string name;
    bool automatic { false };
    int ready_fd { -1 };
};

constexpr char const* POOL_SERVE_FOOTER = R"(Serves every volume and snapshot of the pool over NBD on STATE_DIR/locks/POOL.nbd.sock (export
name: the volume's name). `kasou run --disk vol:POOL/VOL` connects there, and starts this server
with --auto when none runs; an --auto server stops when its last connection closes, one started
by hand stays until SIGTERM or SIGINT.
Examples:
  kasou pool serve tank
  qemu-img info 'nbd+unix:///root?socket=/var/lib/kasou/locks/tank.nbd.sock'
)";

int serve_pool(PoolServeOptions const& options, GlobalOptions const& global)
{
    auto const& state_dir = global.state_dir;
    storage::nbd::ServeSpec spec;
    spec.state_dir = state_dir;
    spec.pools = { options.name };
    spec.address.unix_path = storage::nbd::pool_socket_path(state_dir, options.name);
    spec.ready_fd = options.ready_fd;
    spec.owner_only_socket = true;
    std::string marker = storage::nbd::pool_serve_auto_path(state_dir, options.name);
    if (options.automatic) {
        spec.server.exit_when_unused = std::chrono::milliseconds(100);
        spec.server.exit_lock_path = storage::nbd::pool_serve_lock_path(state_dir, options.name);
        (void)sys::mkdir_all(state_dir + "/locks", 0755);
        (void)sys::open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    } else {
        (void)sys::unlink(marker); // left by an auto-started server that crashed
    }
    auto served = storage::nbd::serve(spec);
    if (options.automatic)
        (void)sys::unlink(marker);
    if (!served) {
        spdlog::error("{}", served.error().to_string());
        return 1;
    }
    return 0;
}

} // namespace

void add_pool_serve_command(CLI::App& pool, GlobalOptions const& global, Action& action)
{
    auto options = std::make_shared<PoolServeOptions>();
    auto* serve = pool.add_subcommand("serve", "Hold a pool open and serve its volumes to VMs and NBD clients until SIGTERM");
    serve->footer(POOL_SERVE_FOOTER);
    serve->add_option("name", options->name, "Pool name")->required();
    serve->add_flag("--auto", options->automatic, "Stop when the last connection closes (as started by kasou run)");
    serve->add_option("--ready-fd", options->ready_fd, "Write \"ready\" to this descriptor once listening, then close it")
        ->check(CLI::Range(3, 65535));
    serve->callback([&action, &global, options] { action = [&global, options] { return serve_pool(*options, global); }; });
}

} // namespace kasou::cmd
