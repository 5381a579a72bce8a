// `kasou nbd serve`: export volumes and raw files over the NBD protocol.

#include <chrono>
#include <memory>

#include "base/log.h"
#include "base/size.h"
#include "cmd/commands.h"
#include "storage/nbd/serve.h"

namespace kasou::cmd {

namespace {

struct NbdServeOptions {
    std::vector<std::string> volumes;
    std::vector<std::string> files;
    std::string unix_path;
    std::string tcp;
    bool read_only { false };
    bool direct { false };
    std::string engine { "sync" };
    u32 workers { 4 };
    std::string max_memory { "256M" };
    u32 max_connections { 256 };
    u32 handshake_timeout { 10 };
    u32 idle_timeout { 0 };
    u32 send_timeout { 60 };
};

constexpr char const* NBD_FOOTER = R"(Examples:
  kasou nbd serve tank/disk0 --unix /run/kasou-nbd.sock        export volume disk0 of pool tank
  kasou nbd serve tank/a tank/b --tcp 127.0.0.1:10809          two exports, named a and b
  kasou nbd serve --file disk.img --unix /tmp/nbd.sock         a raw image, export "disk.img"
  kasou nbd serve --file base=/images/base.raw --read-only --tcp 127.0.0.1:10809
Clients: qemu-img info nbd+unix:///disk0?socket=/run/kasou-nbd.sock
         nbdinfo --map nbd://127.0.0.1:10809/a
SIGTERM or SIGINT stops the server after it has answered every request it received.
Exit status: 0 after a clean stop, 1 if serving failed, 2 on bad options.
)";

int serve(NbdServeOptions const& options, GlobalOptions const& global)
{
    auto fail = [](Error const& error) {
        spdlog::error("{}", error.to_string());
        return 1;
    };
    storage::nbd::ServeSpec spec;
    spec.state_dir = global.state_dir;
    spec.volumes = options.volumes;
    spec.files = options.files;
    spec.read_only = options.read_only;
    spec.file_options.direct = options.direct;
    spec.server.workers_per_connection = options.workers;
    auto max_memory = parse_size(options.max_memory);
    if (!max_memory)
        return fail(max_memory.error().with_prefix("--max-memory"));
    spec.server.max_memory = *max_memory;
    spec.server.max_connections = options.max_connections;
    spec.server.handshake_timeout = std::chrono::seconds(options.handshake_timeout);
    spec.server.idle_timeout = std::chrono::seconds(options.idle_timeout);
    spec.server.send_timeout = std::chrono::seconds(options.send_timeout);
    if (auto valid = spec.server.validate(); !valid)
        return fail(valid.error());
    auto engine = storage::parse_io_engine_kind(options.engine);
    if (!engine)
        return fail(engine.error().with_prefix("--engine"));
    spec.file_options.engine = *engine;
    if (!options.unix_path.empty()) {
        spec.address.unix_path = options.unix_path;
    } else {
        auto address = storage::nbd::ListenAddress::parse_tcp(options.tcp);
        if (!address)
            return fail(address.error().with_prefix("--tcp"));
        spec.address = *address;
    }
    if (auto served = storage::nbd::serve(spec); !served)
        return fail(served.error());
    return 0;
}

} // namespace

void add_nbd_command(CLI::App& app, GlobalOptions const& global, Action& action)
{
    auto* nbd = app.add_subcommand("nbd", "Serve volumes and raw images over the NBD protocol");
    nbd->require_subcommand(1);
    auto options = std::make_shared<NbdServeOptions>();
    auto* serve_command = nbd->add_subcommand("serve", "Export POOL/VOL volumes (and --file images) until SIGTERM");
    serve_command->footer(NBD_FOOTER);
    serve_command->add_option("volumes", options->volumes, "Volumes to export, as POOL/VOL; each export is named VOL");
    serve_command->add_option("--file", options->files, "Also export a raw image file or block device: PATH (export named after the file) or NAME=PATH");
    auto* unix_option = serve_command->add_option("--unix", options->unix_path, "Listen on this Unix socket path");
    auto* tcp_option = serve_command->add_option("--tcp", options->tcp, "Listen on IPv4 HOST:PORT (e.g. 127.0.0.1:10809)");
    unix_option->excludes(tcp_option);
    serve_command->add_flag("--read-only", options->read_only, "Refuse writes, trims and zeroing on every export");
    serve_command->add_flag("--direct", options->direct, "Open --file images with O_DIRECT (bypass the host page cache)");
    serve_command->add_option("--engine", options->engine, "I/O engine for --file images: sync (pread/pwrite) or uring (io_uring)")
        ->capture_default_str();
    serve_command->add_option("--workers", options->workers, "Threads per connection that run pipelined requests concurrently")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    serve_command->add_option("--max-memory", options->max_memory,
        "Request data all clients together may make the server hold (e.g. 256M, 1G); a request that does not fit waits")
        ->capture_default_str();
    serve_command->add_option("--max-connections", options->max_connections, "Connections served at once; more are closed on arrival")
        ->capture_default_str()
        ->check(CLI::Range(1, 65536));
    serve_command->add_option("--handshake-timeout", options->handshake_timeout, "Seconds a client has to pick an export before it is disconnected (0: no limit)")
        ->capture_default_str();
    serve_command->add_option("--idle-timeout", options->idle_timeout, "Seconds without a request after which a connection is closed (0: never)")
        ->capture_default_str();
    serve_command->add_option("--send-timeout", options->send_timeout, "Seconds a client may take in no reply data before it is disconnected (0: no limit)")
        ->capture_default_str();
    serve_command->callback([&action, options, &global, unix_option, tcp_option] {
        if (unix_option->count() == 0 && tcp_option->count() == 0)
            throw CLI::RequiredError("--unix or --tcp");
        action = [options, &global] { return serve(*options, global); };
    });
}

} // namespace kasou::cmd
