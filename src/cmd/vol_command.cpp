// `kasou vol ...`: thin volumes, snapshots and clones in a pool.

#include <ctime>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/size.h"
#include "base/try.h"
#include "cmd/commands.h"
#include "storage/pool/pool_control.h"
#include "storage/pool/pool_handle.h"
#include "storage/pool/pool_status.h"
#include "storage/pool/progress.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"
#include "storage/pool/volume_transfer.h"

namespace kasou::cmd {

namespace {

constexpr char const* VOL_FOOTER = R"(Volumes are thin: space is taken in 64 KiB chunks on first write, and unwritten ranges read
as zeroes. Snapshots and clones take the same (short) time whatever the volume holds: they share
chunks, and a chunk is copied only when one side writes it.

Examples:
  kasou vol create tank/disk0 --size 20G
  kasou vol snapshot tank/disk0 tank/disk0-monday        read-only, frozen in time
  kasou vol clone tank/disk0-monday tank/test            writable copy of the snapshot
  kasou vol resize tank/disk0 --size 40G
  kasou vol ls tank
  kasou vol import tank/debian debian.raw                creates the volume if needed
  kasou vol export tank/disk0 backup.raw                 sparse where nothing is written
  kasou vol rm tank/test                                 space is freed in the background
Serve a volume to QEMU or other NBD clients with 'kasou nbd serve tank/disk0 --unix PATH'.
Serve volumes to VMMs over vhost-user-blk from one process that holds the pool:
  kasou pool serve tank &
  kasou vol export tank/disk0 --vhost-user /run/disk0.sock
  kasou vol unexport tank/disk0
)";

int fail(Error const& error)
{
    spdlog::error("{}", error.to_string());
    return 1;
}

struct VolOptions {
    std::string path;
    std::string target;
    std::string size;
    std::string file;
    std::string pool;
    bool json { false };
    std::string vhost_user; // export / unexport: the vhost-user socket
    u16 queues { 0 };
};

// Asks the process serving POOL (`kasou pool serve`) to carry out `request` for VOL of POOL/VOL.
int ask_server(GlobalOptions const& global, std::string const& path, nlohmann::json request)
{
    auto names = storage::parse_volume_path(path);
    if (!names)
        return fail(names.error());
    request["volume"] = names->second;
    auto answer = storage::ask_holder(global.state_dir, names->first, request);
    if (!answer)
        return fail(Error::from_string(fmt::format("pool {} is not being served: start 'kasou pool serve {}' first", names->first, names->first),
            ErrorKind::NotFound));
    if (!*answer)
        return fail(answer->error());
    return 0;
}

// Opens the pool of POOL/VOL and runs work(handle, VOL).
int with_volume(GlobalOptions const& global, std::string const& path, std::function<ErrorOr<void>(storage::PoolHandle&, std::string const&)> const& work)
{
    auto names = storage::parse_volume_path(path);
    if (!names)
        return fail(names.error());
    auto handle = storage::PoolHandle::open(global.state_dir, names->first);
    if (!handle)
        return fail(handle.error());
    if (auto result = work(*handle, names->second); !result)
        return fail(result.error());
    if (auto closed = handle->close(); !closed)
        return fail(closed.error());
    return 0;
}

int list_volumes(GlobalOptions const& global, std::string const& only_pool, bool json)
{
    std::vector<std::string> pools;
    if (!only_pool.empty()) {
        pools.push_back(only_pool);
    } else {
        auto records = storage::Registry::list(global.state_dir);
        if (!records)
            return fail(records.error());
        for (auto const& record : *records)
            pools.push_back(record.name);
    }
    std::vector<storage::VolumeStatus> volumes;
    for (auto const& pool_name : pools) {
        auto handle = storage::PoolHandle::open(global.state_dir, pool_name);
        if (!handle)
            return fail(handle.error());
        auto statuses = storage::volume_statuses(handle->pool());
        if (!statuses)
            return fail(statuses.error());
        volumes.insert(volumes.end(), statuses->begin(), statuses->end());
    }
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (auto const& volume : volumes)
            out.push_back(storage::to_json(volume));
        fmt::print("{}\n", out.dump(2));
        return 0;
    }
    fmt::print("{:<32} {:>10} {:>10}  {:<9} {}\n", "VOLUME", "SIZE", "ALLOCATED", "TYPE", "ORIGIN");
    for (auto const& volume : volumes)
        fmt::print("{:<32} {:>10} {:>10}  {:<9} {}\n", volume.path(), format_size(volume.size), format_size(volume.allocated),
            storage::volume_kind_name(volume.kind), volume.origin.value_or("-"));
    return 0;
}

} // namespace

void add_vol_command(CLI::App& app, GlobalOptions const& global, Action& action)
{
    auto* vol = app.add_subcommand("vol", "Thin volumes, snapshots and clones in a pool");
    vol->require_subcommand(1);
    vol->footer(VOL_FOOTER);
    auto options = std::make_shared<VolOptions>();

    auto* create = vol->add_subcommand("create", "Make a thin volume (no space is taken until written)");
    create->add_option("volume", options->path, "POOL/VOL")->required();
    create->add_option("--size", options->size, "Size, e.g. 512M, 20G (a multiple of 512 bytes)")->required();
    create->callback([&action, &global, options] {
        action = [&global, options] {
            auto size = parse_size(options->size);
            if (!size)
                return fail(size.error().with_prefix("--size"));
            return with_volume(global, options->path, [&](storage::PoolHandle& pool, std::string const& name) { return pool.pool().create_volume(name, *size); });
        };
    });

    auto* snapshot = vol->add_subcommand("snapshot", "Freeze a volume's current content as a read-only snapshot");
    snapshot->add_option("volume", options->path, "POOL/VOL to snapshot")->required();
    snapshot->add_option("snapshot", options->target, "POOL/SNAP, the new snapshot")->required();
    auto* clone = vol->add_subcommand("clone", "Make a writable volume that starts as a copy of a snapshot (or volume)");
    clone->add_option("source", options->path, "POOL/SNAP to clone")->required();
    clone->add_option("volume", options->target, "POOL/NEW, the new volume")->required();
    for (auto const& entry : { std::pair { snapshot, false }, std::pair { clone, true } }) {
        bool writable = entry.second;
        entry.first->callback([&action, &global, options, writable] {
            action = [&global, options, writable] {
                auto paths = storage::parse_snapshot_paths(options->path, options->target);
                if (!paths)
                    return fail(paths.error());
                return with_volume(global, options->path, [&](storage::PoolHandle& pool, std::string const& name) {
                    return pool.pool().snapshot(name, paths->target, writable);
                });
            };
        });
    }

    auto* resize = vol->add_subcommand("resize", "Change a volume's size (shrinking drops the data past the new end)");
    resize->add_option("volume", options->path, "POOL/VOL")->required();
    resize->add_option("--size", options->size, "New size, e.g. 40G")->required();
    resize->callback([&action, &global, options] {
        action = [&global, options] {
            auto size = parse_size(options->size);
            if (!size)
                return fail(size.error().with_prefix("--size"));
            return with_volume(global, options->path, [&](storage::PoolHandle& pool, std::string const& name) { return pool.pool().resize(name, *size); });
        };
    });

    auto* remove = vol->add_subcommand("rm", "Remove a volume or snapshot; space not shared with others is freed in the background");
    remove->add_option("volume", options->path, "POOL/VOL")->required();
    remove->callback([&action, &global, options] {
        action = [&global, options] {
            return with_volume(global, options->path, [&](storage::PoolHandle& pool, std::string const& name) { return pool.pool().remove(name); });
        };
    });

    auto* list = vol->add_subcommand("ls", "List volumes and snapshots with size, allocated space and origin");
    list->add_option("pool", options->pool, "Only this pool (default: every registered pool)");
    list->add_flag("--json", options->json, "Print JSON (sizes in bytes)");
    list->callback([&action, &global, options] { action = [&global, options] { return list_volumes(global, options->pool, options->json); }; });

    auto* import = vol->add_subcommand("import", "Copy a raw image into a volume (created to fit if missing)");
    import->add_option("volume", options->path, "POOL/VOL")->required();
    import->add_option("file", options->file, "Raw image file or block device")->required();
    auto* export_command = vol->add_subcommand("export", "Copy a volume or snapshot into a raw image file (sparse), or serve it over vhost-user");
    export_command->add_option("volume", options->path, "POOL/VOL")->required();
    auto* export_file = export_command->add_option("file", options->file, "Raw image to write (created or truncated)");
    auto* export_socket = export_command->add_option("--vhost-user", options->vhost_user,
        "Instead: export it as a vhost-user-blk back-end on this socket, from the running 'kasou pool serve POOL'");
    export_command->add_option("--queues", options->queues, "With --vhost-user: request queues (default: the server's)")
        ->check(CLI::Range(1, 256))
        ->needs(export_socket);
    export_file->excludes(export_socket);
    auto* unexport = vol->add_subcommand("unexport", "Stop serving a volume over vhost-user (every socket, or the one named)");
    unexport->add_option("volume", options->path, "POOL/VOL")->required();
    unexport->add_option("--vhost-user", options->vhost_user, "Only the export on this socket");
    unexport->callback([&action, &global, options] {
        action = [&global, options] {
            nlohmann::json request { { "op", "vhost-user-unexport" } };
            if (!options->vhost_user.empty())
                request["socket"] = std::filesystem::absolute(options->vhost_user).string();
            return ask_server(global, options->path, request);
        };
    });
    for (auto const& entry : { std::pair { import, true }, std::pair { export_command, false } }) {
        bool importing = entry.second;
        entry.first->callback([&action, &global, options, importing] {
            action = [&global, options, importing] {
                if (!importing && !options->vhost_user.empty()) {
                    nlohmann::json request { { "op", "vhost-user-export" }, { "socket", std::filesystem::absolute(options->vhost_user).string() } };
                    if (options->queues != 0)
                        request["queues"] = options->queues;
                    return ask_server(global, options->path, request);
                }
                if (options->file.empty())
                    return fail(Error::from_string("vol export needs a FILE to write, or --vhost-user SOCKET"));
                storage::TerminalProgress bar(importing ? "import" : "export");
                auto progress = [&](u64 done, u64 total) { bar.update(done, total); };
                return with_volume(global, options->path, [&](storage::PoolHandle& pool, std::string const& name) {
                    return importing ? storage::import_image(pool, name, options->file, progress) : storage::export_image(pool, name, options->file, progress);
                });
            };
        });
    }
}

} // namespace kasou::cmd
