// kasou: one binary, one subcommand per capability. Argument parsing only; the work is in src/.

#include <cstdlib>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "cmd/commands.h"
#include "storage/pool/registry.h"

int main(int argc, char** argv)
{
    using namespace kasou::cmd;
    // Called through a link named kasou-runc, kasou is the OCI runtime with runc's command line
    // (containerd's runc shim runs "<binary> --root R --log L create ..."): `kasou oci ...`.
    std::vector<char*> runc_argv;
    std::string_view name = argc > 0 ? argv[0] : "";
    if (auto slash = name.rfind('/'); slash != std::string_view::npos)
        name.remove_prefix(slash + 1);
    if (name == "kasou-runc") {
        static char oci[] = "oci";
        runc_argv.assign(argv, argv + argc);
        runc_argv.insert(runc_argv.begin() + 1, oci);
        argc = static_cast<int>(runc_argv.size());
        argv = runc_argv.data();
    }
    CLI::App app { "kasou: virtual machines, containers and disks from one small, fast tool" };
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every subcommand");
    GlobalOptions options;
    char const* env_state = std::getenv("KASOU_STATE_DIR");
    options.state_dir = env_state && *env_state ? env_state : "/var/lib/kasou";
    options.log_level = "warn";
    app.add_option("--state-dir", options.state_dir, "Where kasou keeps its registry of pools (env KASOU_STATE_DIR)")
        ->capture_default_str();
    app.add_option("--log-level", options.log_level, "error, warn, info, debug or trace")->capture_default_str();

    Action action;
    add_run_command(app, options, action);
    add_cores_command(app, options, action);
    add_nbd_command(app, options, action);
    add_pool_command(app, options, action);
    add_vol_command(app, options, action);
    add_oci_command(app, options, action);
    // Subcommands of other capabilities are added here as they land.
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& error) {
        int code = app.exit(error);
        return code == 0 ? 0 : 2;
    }
    kasou::log::init(options.log_level);
    // Checked before any command runs, so none writes a thing under a state directory it cannot use.
    auto state_dir = kasou::storage::resolve_state_dir(options.state_dir);
    if (!state_dir) {
        spdlog::error("--state-dir: {}", state_dir.error().to_string());
        return 2;
    }
    options.state_dir = *state_dir;
    return action ? action() : 0;
}
