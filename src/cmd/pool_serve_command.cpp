// `kasou pool serve`: the one process that holds a pool open and serves all its volumes, so that
// many VMs can use them at once (storage/nbd/served_pool.h).

#include <memory>
#include <fcntl.h>

#include "base/log.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"
#include "cmd/commands.h"
#include "storage/nbd/serve.h"
#include "storage/nbd/served_pool.h"
#include "vhost_user/pool_serve.h"

namespace kasou::cmd {

namespace {

struct PoolServeOptions {
    std::string name;
    bool automatic { false };
    int ready_fd { -1 };
    std::vector<std::string> vhost_user_exports; // "VOL=SOCKET"
    vhost_user::BlkBackendOptions vhost_user;
};

constexpr char const* POOL_SERVE_FOOTER = R"(Serves every volume and snapshot of the pool over NBD on STATE_DIR/locks/POOL.nbd.sock (export
name: the volume's name). `kasou run --disk vol:POOL/VOL` connects there, and starts this server
with --auto when none runs; an --auto server stops when its last connection closes, one started
by hand stays until SIGTERM or SIGINT.
It also exports volumes as vhost-user-blk back-ends to other VMMs (QEMU, Cloud Hypervisor), named
here or added and removed while it runs (docs/vhost-user.md):
  kasou vol export tank/disk0 --vhost-user /run/disk0.sock
  kasou vol unexport tank/disk0
Front-ends: QEMU -chardev socket,id=c0,path=/run/disk0.sock -device vhost-user-blk-pci,chardev=c0
(guest RAM shared: -object memory-backend-memfd,id=mem,size=...,share=on -machine memory-backend=mem).
SIGTERM or SIGINT stops it after every request taken is answered.
Examples:
  kasou pool serve tank
  kasou pool serve --vhost-user disk0=/run/disk0.sock --queues 4 tank
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
    spec.attach_to_pool = [&options](storage::PoolHandle& pool) -> ErrorOr<std::shared_ptr<void>> {
        return TRY(vhost_user::attach_exports(pool, options.vhost_user, options.vhost_user_exports));
    };
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
    serve->add_option("--vhost-user", options->vhost_user_exports, "VOL=SOCKET: export VOL as a vhost-user-blk back-end on SOCKET (repeatable)")
        ->allow_extra_args(false);
    serve->add_option("--queues", options->vhost_user.queues, "Request queues per vhost-user export (virtio-blk multiqueue)")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    serve->add_flag("--auto", options->automatic, "Stop when the last connection closes (as started by kasou run)");
    serve->add_option("--ready-fd", options->ready_fd, "Write \"ready\" to this descriptor once listening, then close it")
        ->check(CLI::Range(3, 65535));
    serve->callback([&action, &global, options] { action = [&global, options] { return serve_pool(*options, global); }; });
}

} // namespace kasou::cmd
