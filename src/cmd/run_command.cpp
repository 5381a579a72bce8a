// `kasou run`: boot a guest on KVM.

#include <chrono>

#include "arch/x86_64/cpu_features.h"
#include "base/log.h"
#include "base/size.h"
#include "cmd/commands.h"
#include "vmm/machine.h"

namespace kasou::cmd {

namespace {

struct RunOptions {
    std::string kernel;
    bool flat { false };
    u32 cpus { 1 };
    std::string memory { "256M" };
    std::optional<std::string> command_line;
    std::string serial { "stdio" };
    std::string cpu_features;
};

constexpr char const* RUN_FOOTER = R"(Examples:
  kasou run --kernel guest.elf                      boot a PVH ELF image, console on this terminal
  kasou run --kernel boot.bin --flat                run a raw real-mode binary loaded at 0x10000
  kasou run --kernel vmlinux --cpus 2 --memory 1G --cmdline "console=ttyS0 root=/dev/vda"
  kasou run --kernel guest.elf --serial file:/tmp/console.log --cpu-features -xsave,-cx16

Exit status: how the guest ended.
  0  the guest powered off                  4  the guest asked for a reboot
  2  bad options, kernel or host (nothing ran)
  6  triple fault (CPU shutdown)            8  stopped by SIGINT or SIGTERM
  10 KVM could not run the guest            12 a vCPU halted for good
  14 the guest reported a crash
  odd values: the guest wrote v to the debug-exit port 0xf4, status (v << 1) | 1
      (QEMU's isa-debug-exit convention)
)";

int run_machine(RunOptions const& options, GlobalOptions const&, std::chrono::steady_clock::time_point start)
{
    auto fail = [](Error const& error) {
        spdlog::error("{}", error.to_string());
        return vmm::EXIT_CONFIGURATION_ERROR;
    };
    vmm::MachineConfig config;
    config.start_time = start;
    config.kernel_path = options.kernel;
    config.flat = options.flat;
    config.cpus = options.cpus;
    config.command_line = options.command_line;
    auto memory = parse_size(options.memory);
    if (!memory)
        return fail(memory.error().with_prefix("--memory"));
    config.memory = *memory;
    auto serial = vmm::SerialSpec::parse(options.serial);
    if (!serial)
        return fail(serial.error());
    config.serial = *serial;
    auto hidden = arch::x86_64::parse_hidden_features(options.cpu_features);
    if (!hidden)
        return fail(hidden.error());
    config.hidden_features = *hidden;

    auto machine = vmm::Machine::create(std::move(config));
    if (!machine)
        return fail(machine.error());
    auto reason = (*machine)->run();
    if (reason.kind == vmm::StopKind::PoweredOff || reason.kind == vmm::StopKind::DebugExit)
        spdlog::info("{}", reason.message);
    else
        spdlog::warn("{} (exit status {})", reason.message, reason.status);
    return reason.status;
}

} // namespace

void add_run_command(CLI::App& app, GlobalOptions const& global, Action& action)
{
    auto start = std::chrono::steady_clock::now();
    auto options = std::make_shared<RunOptions>();
    auto* run = app.add_subcommand("run", "Boot a guest kernel in a KVM virtual machine");
    run->footer(RUN_FOOTER);
    run->add_option("--kernel", options->kernel,
           "Kernel image: an ELF with a PVH entry note (vmlinux, PVH test guests), or a raw real-mode binary with --flat")
        ->required();
    run->add_flag("--flat", options->flat, "Treat --kernel as a raw real-mode binary, loaded at 0x10000 and entered at 1000:0000");
    run->add_option("--cpus", options->cpus, "Number of vCPUs; the guest wakes the others with INIT/SIPI (e.g. --cpus 2)")
        ->capture_default_str();
    run->add_option("--memory", options->memory, "Guest RAM, with K, M, G or T suffix (e.g. --memory 1G)")->capture_default_str();
    run->add_option("--cmdline", options->command_line,
        std::string("Kernel command line (default: \"") + vmm::MachineConfig::DEFAULT_COMMAND_LINE + "\")");
    run->add_option("--serial", options->serial,
           "Where COM1 goes: stdio, file:PATH (output only) or unix:PATH (connect to a listening socket)")
        ->capture_default_str();
    run->add_option("--cpu-features", options->cpu_features,
        "Hide CPU features from the guest, comma-separated with a leading '-' (e.g. -xsave,-cx16)");
    run->callback([&action, options, &global, start] {
        action = [options, &global, start] { return run_machine(*options, global, start); };
    });
}

} // namespace kasou::cmd
