// `kasou run`: boot a guest on KVM.

#include <chrono>
#include <csignal>
#include <functional>
#include <pthread.h>
#include <sys/signalfd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>

#include <fmt/format.h>

#include "arch/x86_64/cpu_features.h"
#include "base/log.h"
#include "base/fd.h"
#include "base/size.h"
#include "base/sys_signal.h"
#include "base/try.h"
#include "cmd/commands.h"
#include "storage/io/raw_file_device.h"
#include "virtio/adaptive_poll.h"
#include "vmm/console_input.h"
#include "vmm/machine.h"

namespace kasou::cmd {

namespace {

namespace asio = boost::asio;
using boost::system::error_code;

struct RunOptions {
    std::string kernel;
    std::optional<std::string> initrd;
    std::string on_reboot { "exit" };
    bool flat { false };
    u32 cpus { 1 };
    std::string memory { "256M" };
    std::optional<std::string> command_line;
    std::string serial { "stdio" };
    std::string cpu_features;
    std::vector<std::string> disks;
    bool no_rng { false };
    std::optional<std::string> cores;
    std::vector<std::string> nets;
    std::optional<std::string> vsock;
    std::string console { "serial" };
    std::string irqchip; // empty: split where the host offers it
    std::string accel { "auto" };
    u32 io_poll_us { static_cast<u32>(virtio::AdaptivePoll::DEFAULT_MAXIMUM.count()) };
};

constexpr char const* RUN_FOOTER = R"(Examples:
  kasou run --kernel guest.elf                      boot a PVH ELF image, console on this terminal
  kasou run --kernel boot.bin --flat                run a raw real-mode binary loaded at 0x10000
  kasou run --kernel vmlinux --cpus 2 --memory 1G --cmdline "console=ttyS0 root=/dev/vda"
  kasou run --kernel /boot/vmlinuz-6.1.0-13-amd64 --initrd /boot/initrd.img-6.1.0-13-amd64 --memory 1G
  kasou run --kernel bzImage --initrd rootfs.cpio.gz --on-reboot=restart
  kasou run --kernel guest.elf --serial file:/tmp/console.log --cpu-features -xsave,-cx16
  kasou run --kernel vmlinux --disk root.img --disk vol:tank/data,ro --cpus 4 --cores auto

Exit status: how the guest ended.
  0  the guest powered off                  4  the guest asked for a reboot (--on-reboot=exit)
  2  bad options, kernel or host (nothing ran)
  6  triple fault (CPU shutdown)            8  stopped by SIGINT or SIGTERM
  10 KVM could not run the guest            12 a vCPU halted for good
  14 the guest reported a crash
  odd values: the guest wrote v to the debug-exit port 0xf4, status (v << 1) | 1
      (QEMU's isa-debug-exit convention)
)";

// What a guest's reboot request does to kasou (--on-reboot).
enum class RebootPolicy {
    Exit,    // kasou ends with the Reboot status (4)
    Restart, // a fresh machine is built from the same configuration and booted again
};

// Blocks SIGINT and SIGTERM on the calling thread (and the threads it starts) for its lifetime,
// restoring the previous mask: they are taken from a signalfd instead.
class StopSignalsBlocked {
public:
    StopSignalsBlocked()
    {
        sigset_t stop_signals = signals();
        ::pthread_sigmask(SIG_BLOCK, &stop_signals, &m_previous);
    }
    ~StopSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &m_previous, nullptr); }
    StopSignalsBlocked(StopSignalsBlocked const&) = delete;
    StopSignalsBlocked& operator=(StopSignalsBlocked const&) = delete;

    static sigset_t signals()
    {
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        return stop_signals;
    }

private:
    sigset_t m_previous;
};

// A descriptor the loop waits on but does not own: released, not closed, when the wait ends.
class BorrowedDescriptor {
public:
    BorrowedDescriptor(asio::io_context& io, int fd)
        : m_descriptor(io, fd)
    {
    }
    ~BorrowedDescriptor() { m_descriptor.release(); }
    BorrowedDescriptor(BorrowedDescriptor const&) = delete;
    BorrowedDescriptor& operator=(BorrowedDescriptor const&) = delete;

    asio::posix::stream_descriptor& get() { return m_descriptor; }

private:
    asio::posix::stream_descriptor m_descriptor;
};

// Runs a built machine to its end on one Boost.Asio loop: the machine's stop event ends the loop,
// SIGINT and SIGTERM (taken from a signalfd, since every thread blocks them) stop the machine, and
// standard input (or what --serial reads from) goes to its serial console until it ends.
vmm::StopReason run_to_end(vmm::Machine& machine)
{
    auto signals = sys::signalfd(StopSignalsBlocked::signals());
    if (!signals) {
        machine.request_stop(vmm::StopReason::make(vmm::StopKind::VcpuFailure, signals.error().with_prefix("control loop").to_string()));
        return machine.wait();
    }
    if (auto started = machine.start(); !started)
        machine.request_stop(vmm::StopReason::make(vmm::StopKind::VcpuFailure, started.error().to_string()));

    asio::io_context io;
    BorrowedDescriptor stop(io, machine.stop_fd());
    stop.get().async_wait(asio::posix::stream_descriptor::wait_read, [&](error_code const&) { io.stop(); });

    BorrowedDescriptor signal_reader(io, signals->get());
    signalfd_siginfo info {};
    std::function<void()> read_signal = [&] {
        asio::async_read(signal_reader.get(), asio::buffer(&info, sizeof(info)), [&](error_code const& code, size_t) {
            if (code)
                return;
            machine.request_stop(vmm::StopReason::make(vmm::StopKind::Signal, fmt::format("stopped by {}", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM")));
            read_signal();
        });
    };
    read_signal();

    std::unique_ptr<vmm::ConsoleInput> input;
    if (int input_fd = machine.console_input_fd(); input_fd >= 0) {
        auto started = vmm::ConsoleInput::start(io, input_fd, [&](std::span<u8 const> bytes) { machine.console_input(bytes); });
        if (started)
            input = std::move(*started);
        else
            spdlog::warn("console input: {}; the guest runs without it", started.error().to_string());
    }
    io.run();
    input.reset(); // on this thread, with the loop no longer running, as ConsoleInput asks
    return machine.wait();
}

// Builds and runs machines from `config` until one ends other than by a reboot that `policy` turns
// into a restart. SIGINT and SIGTERM stay blocked for the whole time, so one that arrives while a
// machine is being built (the first or a restarted one) is taken by that machine's loop and ends it
// with the Signal status instead of killing kasou half-way. Returns the last stop, or the error
// that kept a machine from being built (nothing of that machine ran).
ErrorOr<vmm::StopReason> run_machines(vmm::MachineConfig const& config, RebootPolicy policy)
{
    StopSignalsBlocked blocked;
    ::signal(SIGPIPE, SIG_IGN); // a console or socket peer that goes away is an error, not death
    for (;;) {
        auto machine = TRY(vmm::Machine::create(config));
        auto reason = run_to_end(*machine);
        if (reason.kind != vmm::StopKind::Reboot || policy != RebootPolicy::Restart)
            return reason;
        spdlog::info("{}; restarting the guest (--on-reboot=restart)", reason.message);
    }
}

int report_stop(vmm::StopReason const& reason)
{
    if (reason.kind == vmm::StopKind::PoweredOff || reason.kind == vmm::StopKind::DebugExit)
        spdlog::info("{}", reason.message);
    else
        spdlog::warn("{} (exit status {})", reason.message, reason.status);
    return reason.status;
}

int run_machine(RunOptions const& options, GlobalOptions const& global, std::chrono::steady_clock::time_point start)
{
    auto fail = [](Error const& error) {
        spdlog::error("{}", error.to_string());
        return vmm::EXIT_CONFIGURATION_ERROR;
    };
    vmm::MachineConfig config;
    config.start_time = start;
    config.kernel_path = options.kernel;
    config.initrd_path = options.initrd;
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
    for (auto const& text : options.disks) {
        auto disk = vmm::DiskSpec::parse(text);
        if (!disk)
            return fail(disk.error());
        // A disk another process holds (a member of a pool it serves) is refused here, before
        // anything boots, and again by the device's own open.
        if (disk->kind == vmm::DiskSpec::Kind::RawFile) {
            if (auto usable = storage::RawFileDevice::open(disk->path, { .read_only = disk->read_only }); !usable)
                return fail(usable.error().with_prefix(fmt::format("--disk {}", disk->path)));
        }
        config.disks.push_back(*disk);
    }
    config.entropy = !options.no_rng;
    config.state_dir = global.state_dir;
    config.cores = options.cores;
    for (auto const& text : options.nets) {
        auto net = vmm::NetSpec::parse(text);
        if (!net)
            return fail(net.error());
        config.nets.push_back(*net);
    }
    if (options.vsock) {
        auto vsock = vmm::VsockSpec::parse(*options.vsock);
        if (!vsock)
            return fail(vsock.error());
        config.vsock = *vsock;
    }
    config.virtio_console = options.console == "virtio";
    if (!options.irqchip.empty())
        config.irqchip = options.irqchip == "split" ? engine::InterruptControllers::Split : engine::InterruptControllers::InKernel;
    config.io_poll = std::chrono::microseconds { options.io_poll_us };
    config.accel = options.accel == "kvm" ? vmm::Accel::Kvm : options.accel == "emu" ? vmm::Accel::Emu : vmm::Accel::Auto;

    auto policy = options.on_reboot == "restart" ? RebootPolicy::Restart : RebootPolicy::Exit;
    auto reason = run_machines(config, policy);
    if (!reason)
        return fail(reason.error());
    return report_stop(*reason);
}

} // namespace

void add_run_command(CLI::App& app, GlobalOptions const& global, Action& action)
{
    auto start = std::chrono::steady_clock::now();
    auto options = std::make_shared<RunOptions>();
    auto* run = app.add_subcommand("run", "Boot a guest kernel in a KVM virtual machine");
    run->footer(RUN_FOOTER);
    run->add_option("--kernel", options->kernel,
           "Kernel image: a Linux bzImage (vmlinuz), an ELF with a PVH entry note (vmlinux, PVH test guests), or a raw real-mode binary with --flat")
        ->required();
    run->add_option("--initrd", options->initrd,
        "Initial RAM disk for a Linux bzImage or PVH kernel, placed as high as it fits below 4 GiB");
    run->add_option("--on-reboot", options->on_reboot,
           "What a guest reboot does: exit (kasou ends with status 4) or restart (boot the same kernel again)")
        ->check(CLI::IsMember({ "exit", "restart" }))
        ->capture_default_str();
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
    run->add_option("--disk", options->disks,
        "A virtio-blk disk, repeatable: PATH[,ro][,serial=S][,queues=N] for a raw image, or vol:POOL/VOL[,ro][,serial=S][,queues=N] for a pool volume (queues: 1 to 16, default 1)");
    run->add_flag("--no-rng", options->no_rng, "Leave out the virtio-rng entropy device (present by default)");
    run->add_option("--cores", options->cores,
        "Run the vCPUs on a core group: auto (kasou picks CPUs sharing a cache) or a host CPU list such as 2,3 or 4-7");
    run->add_option("--net", options->nets, "A virtio-net device on a tap interface, repeatable: tap=NAME[,mac=52:54:00:12:34:56]");
    run->add_option("--vsock", options->vsock,
        "A virtio-vsock device: cid=N,uds=PATH[,max_connections=N] (host side: connect to PATH and send \"CONNECT PORT\"; "
        "the guest's connections to port P go to PATH_P; at most max_connections, default 1024, open at once)");
    run->add_option("--console", options->console,
           "serial: the console is COM1 (ttyS0); virtio: a virtio console (hvc0) gets the keyboard and the default command line "
           "says console=hvc0")
        ->check(CLI::IsMember({ "serial", "virtio" }))
        ->capture_default_str();
    run->add_option("--irqchip", options->irqchip,
           "Where the PIC pair, IOAPIC and PIT run: split (kasou's own models beside KVM's local APICs, the default where "
           "KVM offers KVM_CAP_SPLIT_IRQCHIP) or kernel (KVM's in-kernel irqchip and PIT, the default elsewhere)")
        ->check(CLI::IsMember({ "split", "kernel" }));
    run->add_option("--accel", options->accel,
           "What runs the guest's code: kvm (/dev/kvm), emu (kasou's software x86-64 CPU, no hardware virtualization "
           "needed) or auto (KVM when /dev/kvm opens, emu otherwise; the log says which)")
        ->check(CLI::IsMember({ "auto", "kvm", "emu" }))
        ->capture_default_str();
    run->add_option("--io-poll-us", options->io_poll_us,
           "Longest time, in microseconds, a virtio device's I/O thread keeps polling its queues for the next request "
           "before it sleeps; it polls only as long as requests have been arriving that soon, and never when kasou may "
           "run on no more CPUs than --cpus. 0: never poll")
        ->check(CLI::Range(0, 1000))
        ->capture_default_str();
    run->callback([&action, options, &global, start] {
        action = [options, &global, start] { return run_machine(*options, global, start); };
    });
}

} // namespace kasou::cmd
