// kasou oci: an OCI runtime with runc's command line, as containerd's runc shim drives it.

#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/sys_path.h"
#include "cmd/commands.h"
#include "container/runtime_log.h"
#include "container/spec_template.h"

namespace kasou::cmd {

namespace {

struct OciOptions {
    std::string root { "/run/kasou-oci" };
    std::string log;
    std::string log_format { "text" };
    bool systemd_cgroup { false };
    bool debug { false };
    bool rootless_spec { false };
    std::string bundle { "." };
};

int write_spec(OciOptions const& options)
{
    std::string path = options.bundle + "/config.json";
    struct stat st {};
    if (sys::stat(path, st))
        return fmt::print(stderr, "kasou oci spec: {} exists already\n", path), 1;
    auto text = container::default_spec(options.rootless_spec, ::getuid(), ::getgid());
    auto fd = sys::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (!fd)
        return fmt::print(stderr, "kasou oci spec: {}\n", fd.error().to_string()), 1;
    auto written = sys::write_exact(fd->get(), text.data(), text.size());
    if (!written)
        return fmt::print(stderr, "kasou oci spec: {}\n", written.error().to_string()), 1;
    return 0;
}

} // namespace

void add_oci_command(CLI::App& app, GlobalOptions const&, Action& action)
{
    auto options = std::make_shared<OciOptions>();
    auto* oci = app.add_subcommand("oci", "OCI runtime: containers from bundles, with runc's command line");
    oci->require_subcommand(1);
    oci->footer("Called as kasou-runc (a symbolic link to kasou), kasou takes runc's command line as is:\n"
                "  containerd: runtime io.containerd.runc.v2 with BinaryName = \"/usr/bin/kasou-runc\".\n"
                "Examples:\n"
                "  mkdir -p b/rootfs && cd b && kasou oci spec && kasou oci run demo\n"
                "  kasou oci --root /run/kasou-oci create --bundle b --pid-file b/pid demo && kasou oci start demo");
    oci->add_option("--root", options->root, "Directory of the containers' state")->capture_default_str();
    oci->add_option("--log", options->log, "Append the runtime's messages to this file");
    oci->add_option("--log-format", options->log_format, "text or json (JSON lines as containerd reads them)")
        ->capture_default_str();
    oci->add_flag("--systemd-cgroup", options->systemd_cgroup, "Refused: kasou manages cgroups itself");
    oci->add_flag("--debug", options->debug, "Log at debug level");

    auto* spec = oci->add_subcommand("spec", "Write a starting config.json into the bundle");
    spec->add_option("-b,--bundle", options->bundle, "Bundle directory")->capture_default_str();
    spec->add_flag("--rootless", options->rootless_spec, "A configuration for an unprivileged user (user namespace)");
    spec->callback([options, &action] { action = [options] { return write_spec(*options); }; });

    auto* features = oci->add_subcommand("features", "Print what this runtime supports (runtime-spec features.md)");
    features->callback([&action] {
        action = [] {
            fmt::print("{}", container::features_document());
            return 0;
        };
    });
}

} // namespace kasou::cmd
