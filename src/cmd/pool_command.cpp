// `kasou pool ...`: create, grow, inspect, check, repair, import and destroy pools of disks.

#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/size.h"
#include "cmd/commands.h"
#include "storage/pool/pool_admin.h"
#include "storage/pool/pool_status.h"
#include "storage/pool/progress.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"

namespace kasou::cmd {

namespace {

constexpr char const* POOL_FOOTER = R"(A pool turns disks (files or block devices) into one space that thin volumes share.
Its metadata lives on the disks themselves; STATE_DIR only remembers which pools exist.

Examples:
  kasou pool create tank --layout linear /dev/sdb /dev/sdc     concatenate two disks
  kasou pool create fast --layout striped --chunk 128K a.img b.img
  kasou pool create safe --layout mirror d1.img d2.img         every chunk on both disks
  kasou pool status tank                                       size, use, members
  kasou pool add tank /dev/sdd                                 grow online
  kasou pool check tank && echo clean
  kasou pool repair safe --replace d1.img --with d3.img       rebuild a failed mirror copy
  kasou pool import /dev/sdb /dev/sdc                          register a pool found on disks
Then make volumes with 'kasou vol create tank/disk0 --size 20G'.
)";

int fail(Error const& error)
{
    spdlog::error("{}", error.to_string());
    return 1;
}

struct PoolOptions {
    std::string name;
    std::string layout { "linear" };
    std::string chunk { "64K" };
    std::vector<std::string> disks;
    bool force { false };
    bool json { false };
    std::string replace;
    std::string with;
};

int show_status(std::string const& state_dir, std::string const& name, bool json)
{
    auto handle = storage::PoolHandle::open(state_dir, name);
    if (!handle)
        return fail(handle.error());
    auto status = storage::pool_status(handle->pool());
    if (json) {
        fmt::print("{}\n", storage::to_json(status).dump(2));
        return 0;
    }
    auto const& usage = status.usage;
    auto percent = [&](u64 part) { return usage.size ? part * 100 / usage.size : 0; };
    fmt::print("pool {}  ({}, generation {})\n", status.name, status.uuid, status.generation);
    fmt::print("  size      {}\n", format_size(usage.size));
    fmt::print("  used      {} ({}%) in {} chunks\n", format_size(usage.data_used), percent(usage.data_used), format_size(status.chunk_size));
    fmt::print("  metadata  {} in {} chunks\n", format_size(usage.metadata_used), usage.metadata_chunks);
    fmt::print("  free      {} ({} of it kept for metadata)\n", format_size(usage.free), format_size(usage.reserve));
    fmt::print("  volumes   {}\n", status.volumes);
    for (size_t i = 0; i < status.segments.size(); ++i) {
        auto const& segment = status.segments[i];
        std::string stripe = segment.kind == storage::SegmentKind::Striped ? fmt::format(", stripe {}", format_size(segment.stripe_size)) : "";
        fmt::print("  segment {}: {} over {} disk(s){}, {}\n", i, storage::layout_name(segment.kind), segment.width, stripe, format_size(segment.size));
        for (u32 m = segment.first_member; m < segment.first_member + segment.width; ++m) {
            auto const& member = status.members[m];
            fmt::print("    member {}  {:8}  {}  {}\n", m, member.state == storage::MemberState::Healthy ? "healthy" : member.state == storage::MemberState::Rebuilding ? "REBUILDING" : "FAILED",
                format_size(member.size), member.disk.value_or("(missing)"));
        }
    }
    return 0;
}

} // namespace

void add_pool_command(CLI::App& app, GlobalOptions const& global, Action& action)
{
    auto* pool = app.add_subcommand("pool", "Pools of disks: many disks as one space for thin volumes");
    pool->require_subcommand(1);
    pool->footer(POOL_FOOTER);
    auto options = std::make_shared<PoolOptions>();

    auto* create = pool->add_subcommand("create", "Make a pool from disks (their contents are lost)");
    create->add_option("name", options->name, "Pool name: letters, digits, _ . + -")->required();
    create->add_option("disks", options->disks, "Files or block devices")->required();
    create->add_option("--layout", options->layout, "linear (concatenate), striped (spread every --chunk), mirror (2 or 3 copies)")
        ->capture_default_str();
    create->add_option("--chunk", options->chunk, "Stripe chunk for striped pools, a power of two from 4K to 4M")->capture_default_str();
    create->add_flag("--force", options->force, "Overwrite disks that belong to another pool");
    create->footer("Example: kasou pool create tank --layout mirror /dev/sdb /dev/sdc");
    create->callback([&action, &global, options] {
        action = [&global, options] {
            auto layout = storage::parse_layout(options->layout);
            if (!layout)
                return fail(layout.error());
            auto chunk = parse_size(options->chunk);
            if (!chunk)
                return fail(chunk.error().with_prefix("--chunk"));
            auto created = storage::create_pool(global.state_dir, { options->name, *layout, *chunk, options->disks, options->force });
            if (!created)
                return fail(created.error());
            fmt::print("created pool {} ({}, {} disk(s))\n", options->name, options->layout, options->disks.size());
            return 0;
        };
    });

    auto* add = pool->add_subcommand("add", "Grow a pool online with more disks");
    add->add_option("name", options->name, "Pool name")->required();
    add->add_option("disks", options->disks, "Disks to add: one or more for linear, as many as the stripe or mirror width otherwise")
        ->required();
    add->add_flag("--force", options->force, "Overwrite disks that belong to another pool");
    add->footer("Example: kasou pool add tank /dev/sdd      (a mirror pool takes disks in pairs or triples)");
    add->callback([&action, &global, options] {
        action = [&global, options] {
            if (auto added = storage::add_disks(global.state_dir, options->name, options->disks, options->force); !added)
                return fail(added.error());
            return 0;
        };
    });

    auto* status = pool->add_subcommand("status", "Show size, use, metadata use and each member's state");
    status->add_option("name", options->name, "Pool name")->required();
    status->add_flag("--json", options->json, "Print JSON (sizes in bytes)");
    status->callback([&action, &global, options] { action = [&global, options] { return show_status(global.state_dir, options->name, options->json); }; });

    auto* list = pool->add_subcommand("ls", "List the pools registered in the state directory");
    list->callback([&action, &global] {
        action = [&global] {
            auto records = storage::Registry::list(global.state_dir);
            if (!records)
                return fail(records.error());
            for (auto const& record : *records)
                fmt::print("{}  {}  {}\n", record.name, record.uuid, fmt::join(record.disks, " "));
            return 0;
        };
    });

    auto* check = pool->add_subcommand("check", "Check a pool's consistency offline; exit status 1 on any fault");
    check->add_option("name", options->name, "Pool name")->required();
    check->footer("Checks checksums of all metadata on every copy, reference counts, space accounting and\n"
                  "member health. Exit status: 0 clean, 1 faults found (listed), 2 the pool cannot be opened.");
    check->callback([&action, &global, options] {
        action = [&global, options] {
            auto handle = storage::PoolHandle::open(global.state_dir, options->name);
            if (!handle) {
                spdlog::error("{}", handle.error().to_string());
                return 2;
            }
            auto faults = handle->pool().check();
            for (auto const& fault : faults)
                fmt::print("fault: {}\n", fault);
            if (faults.empty())
                fmt::print("pool {} is clean\n", options->name);
            return faults.empty() ? 0 : 1;
        };
    });

    auto* repair = pool->add_subcommand("repair", "Resynchronize failed mirror copies, or replace one with a new disk");
    repair->add_option("name", options->name, "Pool name")->required();
    auto* replace = repair->add_option("--replace", options->replace, "The failed member: its index (see pool status) or its disk path");
    repair->add_option("--with", options->with, "The new disk to put in its place")->needs(replace);
    repair->footer("Examples:\n  kasou pool repair safe                                   copy onto failed members whose disks are back\n"
                   "  kasou pool repair safe --replace 1 --with /dev/sde       rebuild member 1 on a new disk");
    repair->callback([&action, &global, options] {
        action = [&global, options] {
            storage::TerminalProgress bar("resync");
            auto repaired = storage::repair_pool(global.state_dir, options->name, options->replace, options->with,
                [&](u64 done, u64 total) { bar.update(done, total); });
            if (!repaired)
                return fail(repaired.error());
            fmt::print("{} member(s) resynchronized\n", *repaired);
            return 0;
        };
    });

    auto* import = pool->add_subcommand("import", "Register the pool found on these disks (e.g. moved from another host)");
    import->add_option("disks", options->disks, "All the pool's disks (a mirror may lack copies)")->required();
    import->callback([&action, &global, options] {
        action = [&global, options] {
            auto name = storage::import_pool(global.state_dir, options->disks);
            if (!name)
                return fail(name.error());
            fmt::print("imported pool {}\n", *name);
            return 0;
        };
    });

    auto* destroy = pool->add_subcommand("destroy", "Wipe a pool's labels and forget it (its data is lost)");
    destroy->add_option("name", options->name, "Pool name")->required();
    destroy->add_flag("--force", options->force, "Destroy even if it still has volumes");
    destroy->callback([&action, &global, options] {
        action = [&global, options] {
            if (auto destroyed = storage::destroy_pool(global.state_dir, options->name, options->force); !destroyed)
                return fail(destroyed.error());
            return 0;
        };
    });
    add_pool_serve_command(*pool, global, action);
}

} // namespace kasou::cmd
