#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace kasou::cmd {

// Options every subcommand sees, set before the subcommand runs.
struct GlobalOptions {
    std::string state_dir; // --state-dir / KASOU_STATE_DIR; "/var/lib/kasou" by default
    std::string log_level; // --log-level
};

// What a parsed command line asks for: run it, get the process exit status.
using Action = std::function<int()>;

// Each add_*_command adds one top-level subcommand (and its own subcommands) to app. When the user
// picks it, its CLI11 callback stores in `action` what to run; main() runs it once parsing is done
// and logging is set up.
void add_run_command(CLI::App& app, GlobalOptions const& options, Action& action);
void add_cores_command(CLI::App& app, GlobalOptions const& options, Action& action);
void add_pool_command(CLI::App& app, GlobalOptions const& options, Action& action);
void add_vol_command(CLI::App& app, GlobalOptions const& options, Action& action);
void add_nbd_command(CLI::App& app, GlobalOptions const& options, Action& action);
// `kasou pool serve`, added under the pool command by add_pool_command.
void add_pool_serve_command(CLI::App& pool, GlobalOptions const& options, Action& action);
void add_oci_command(CLI::App& app, GlobalOptions const& options, Action& action);

} // namespace kasou::cmd
