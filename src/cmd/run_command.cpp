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
#include <fmt/ranges.h>

#include "arch/x86_64/cpu_features.h"
#include "base/log.h"
#include "base/fd.h"
#include "base/size.h"
#include "base/sys_signal.h"
#include "base/try.h"
#include "cmd/commands.h"
#include "storage/io/raw_file_device.h"
#include "virtio/adaptive_poll.h"
#include "vmm/api/api_controller.h"
#include "vmm/api/api_server.h"
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
    std::optional<std::string> api_socket;
    std::string id { "anonymous-instance" };
    std::vector<std::string> machine_options_given; // those the API sets instead, when --kernel is absent
    std::optional<std::string> restore;     // --restore DIR: resume a snapshot instead of booting
    std::optional<std::string> snapshot_to; // --snapshot-to DIR: SIGUSR1 / SIGUSR2 write a snapshot there
    bool cpus_given { false };
    bool memory_given { false };
};

// The options that describe the machine itself; with --api-sock and no --kernel the API sets these.
constexpr char const* MACHINE_OPTIONS[] = { "--initrd", "--flat", "--cpus", "--memory", "--cmdline", "--disk", "--no-rng", "--net", "--vsock" };

constexpr char const* RUN_FOOTER = R"(Examples:
  kasou run --kernel guest.elf                      boot a PVH ELF image, console on this terminal
  kasou run --kernel boot.bin --flat                run a raw real-mode binary loaded at 0x10000
  kasou run --kernel vmlinux --cpus 2 --memory 1G --cmdline "console=ttyS0 root=/dev/vda"
  kasou run --kernel /boot/vmlinuz-6.1.0-13-amd64 --initrd /boot/initrd.img-6.1.0-13-amd64 --memory 1G
  kasou run --kernel bzImage --initrd rootfs.cpio.gz --on-reboot=restart
  kasou run --kernel guest.elf --serial file:/tmp/console.log --cpu-features -xsave,-cx16
  kasou run --kernel vmlinux --disk root.img --disk vol:tank/data,ro --cpus 4 --cores auto
  kasou run --api-sock /tmp/kasou.sock              wait for a Firecracker-style client to configure and start the guest
  kasou run --kernel guest.elf --no-rng --snapshot-to /tmp/snap     SIGUSR2 saves the guest and stops
  kasou run --restore /tmp/snap                     resume the guest where the snapshot left it

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
    explicit StopSignalsBlocked(bool snapshots)
    {
        sigset_t stop_signals = signals(snapshots);
        ::pthread_sigmask(SIG_BLOCK, &stop_signals, &m_previous);
    }
    ~StopSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &m_previous, nullptr); }
    StopSignalsBlocked(StopSignalsBlocked const&) = delete;
    StopSignalsBlocked& operator=(StopSignalsBlocked const&) = delete;

    // With `snapshots`, SIGUSR1 and SIGUSR2 as well (--snapshot-to).
    static sigset_t signals(bool snapshots)
    {
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        if (snapshots) {
            sigaddset(&stop_signals, SIGUSR1);
            sigaddset(&stop_signals, SIGUSR2);
        }
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

// --snapshot-to: pauses the machine, writes the snapshot, and resumes it (SIGUSR1) or stops it
// (SIGUSR2, exit status 8). A snapshot that fails is reported and the machine runs on.
void snapshot_on_signal(vmm::Machine& machine, std::string const& directory, bool then_stop)
{
    auto saved = [&]() -> ErrorOr<void> {
        TRY(machine.pause());
        auto written = machine.save_snapshot(directory);
        if (written && then_stop) {
            machine.request_stop(vmm::StopReason::make(vmm::StopKind::Signal, fmt::format("stopped by SIGUSR2 after a snapshot to {}", directory)));
            return {};
        }
        TRY(machine.resume());
        return written;
    }();
    if (saved)
        spdlog::info("snapshot written to {}", directory);
    else
        spdlog::error("snapshot to {}: {}", directory, saved.error().to_string());
}

// The Boost.Asio loop of one `kasou run`: SIGINT and SIGTERM (taken from a signalfd, since every
// thread blocks them) stop the machine, the machine's stop event ends it (or, for a reboot under
// --on-reboot=restart, builds the next machine from the same configuration), standard input (or
// what --serial reads from) goes to the machine's serial console, and the per-VM API, when asked
// for, is served on the same loop; with --snapshot-to, SIGUSR1 and SIGUSR2 write a snapshot there. The
// machine may come later than the loop: with --api-sock and no --kernel it is launched by the API's
// InstanceStart. Everything runs on the calling thread.
class ControlLoop {
public:
    ControlLoop(asio::io_context& io, Fd signals, RebootPolicy policy, std::optional<std::string> snapshot_to)
        : m_io(io)
        , m_signals(std::move(signals))
        , m_signal_reader(io, m_signals.get())
        , m_policy(policy)
        , m_snapshot_to(std::move(snapshot_to))
    {
        read_signal();
    }

    ~ControlLoop()
    {
        m_input.reset(); // before the machine whose console it reads
        m_stop.reset();
    }

    void set_controller(vmm::api::ApiController* controller) { m_controller = controller; }

    // Builds and starts a machine and watches it; nothing of it runs when this fails.
    ErrorOr<vmm::Machine*> launch(vmm::MachineConfig const& config) { return adopt(TRY(vmm::Machine::create(config)), config); }

    // Starts a built machine (a fresh one, or one restored from a snapshot) and watches it;
    // `config` is what a restart (--on-reboot=restart) builds again.
    ErrorOr<vmm::Machine*> adopt(std::unique_ptr<vmm::Machine> machine, vmm::MachineConfig const& config)
    {
        TRY(machine->start());
        m_config = config;
        m_machine = std::move(machine);
        watch();
        if (m_controller)
            m_controller->attach(*m_machine);
        return m_machine.get();
    }

    // Runs until the machine ends (or, while none was started, a signal comes); returns why, or
    // the error that kept a restarted machine from being built.
    ErrorOr<vmm::StopReason> run()
    {
        m_io.run();
        m_input.reset(); // on this thread, with the loop no longer running, as ConsoleInput asks
        return std::move(m_outcome);
    }

private:
    void read_signal()
    {
        asio::async_read(m_signal_reader.get(), asio::buffer(&m_info, sizeof(m_info)), [this](error_code const& code, size_t) {
            if (code)
                return;
            if (m_snapshot_to && (m_info.ssi_signo == SIGUSR1 || m_info.ssi_signo == SIGUSR2)) {
                if (m_machine)
                    snapshot_on_signal(*m_machine, *m_snapshot_to, m_info.ssi_signo == SIGUSR2);
                return read_signal();
            }
            auto reason = vmm::StopReason::make(vmm::StopKind::Signal, fmt::format("stopped by {}", m_info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"));
            if (m_machine) {
                m_machine->request_stop(std::move(reason));
            } else {
                m_outcome = std::move(reason);
                m_io.stop();
            }
            read_signal();
        });
    }

    void watch()
    {
        m_stop = std::make_unique<BorrowedDescriptor>(m_io, m_machine->stop_fd());
        m_stop->get().async_wait(asio::posix::stream_descriptor::wait_read, [this](error_code const& code) {
            if (!code)
                ended();
        });
        if (int input_fd = m_machine->console_input_fd(); input_fd >= 0) {
            auto started = vmm::ConsoleInput::start(m_io, input_fd, [this](std::span<u8 const> bytes) { m_machine->console_input(bytes); });
            if (started)
                m_input = std::move(*started);
            else
                spdlog::warn("console input: {}; the guest runs without it", started.error().to_string());
        }
    }

    void ended()
    {
        m_input.reset();
        if (m_controller)
            m_controller->detach();
        auto reason = m_machine->wait();
        m_stop.reset(); // released before the machine closes the descriptor it borrows
        m_machine.reset();
        if (reason.kind == vmm::StopKind::Reboot && m_policy == RebootPolicy::Restart) {
            spdlog::info("{}; restarting the guest (--on-reboot=restart)", reason.message);
            if (auto restarted = launch(*m_config); restarted)
                return;
            else
                m_outcome = tl::unexpected(restarted.error());
        } else {
            m_outcome = std::move(reason);
        }
        m_io.stop();
    }

    asio::io_context& m_io;
    Fd m_signals;
    BorrowedDescriptor m_signal_reader;
    signalfd_siginfo m_info {};
    RebootPolicy m_policy;
    std::optional<std::string> m_snapshot_to;
    vmm::api::ApiController* m_controller { nullptr };
    std::optional<vmm::MachineConfig> m_config;
    std::unique_ptr<vmm::Machine> m_machine;
    std::unique_ptr<BorrowedDescriptor> m_stop;
    std::unique_ptr<vmm::ConsoleInput> m_input;
    ErrorOr<vmm::StopReason> m_outcome { tl::unexpected(make_error(ErrorKind::Internal, "the control loop ended without a machine stop")) };
};

// What --restore and --snapshot-to ask for: the snapshot the first machine resumes from (instead of
// booting), and where SIGUSR1 and SIGUSR2 write snapshots.
struct SnapshotOptions {
    std::optional<std::string> restore;
    vmm::Machine::RestoreOptions restore_options;
    std::optional<std::string> snapshot_to;
};

// What --api-sock asks for: the socket, the instance id GET / reports, and whether the command
// line describes the machine (--kernel) or the API will.
struct ApiOptions {
    std::string socket;
    std::string id;
    bool configured_by_api { false };
};

// Builds and runs machines from `config` until one ends other than by a reboot that `policy` turns
// into a restart. SIGINT and SIGTERM stay blocked for the whole time, so one that arrives while a
// machine is being built (the first or a restarted one) is taken by the loop and ends it with the
// Signal status instead of killing kasou half-way. With `api`, the per-VM API is served on the same
// loop, and the first machine may be started by it. Returns the last stop, or the error that kept
// a machine from being built (nothing of that machine ran). With `snapshots.restore`, the first machine
// is the snapshot in that directory rather than a fresh boot.
ErrorOr<vmm::StopReason> run_machines(vmm::MachineConfig const& config, RebootPolicy policy, std::optional<ApiOptions> const& api, SnapshotOptions const& snapshots)
{
    StopSignalsBlocked blocked(snapshots.snapshot_to.has_value());
    ::signal(SIGPIPE, SIG_IGN); // a console or socket peer that goes away is an error, not death
    asio::io_context io;
    ControlLoop loop(io, TRY(sys::signalfd(StopSignalsBlocked::signals(snapshots.snapshot_to.has_value())).map_error([](Error const& e) { return e.with_prefix("control loop"); })),
        policy, snapshots.snapshot_to);
    std::unique_ptr<vmm::api::ApiController> controller;
    std::unique_ptr<vmm::api::ApiServer> server;
    if (api) {
        auto resources = api->configured_by_api ? vmm::api::VmResources::for_api(config) : vmm::api::VmResources::of(config);
        controller = std::make_unique<vmm::api::ApiController>(api->id, std::move(resources),
            [&loop](vmm::MachineConfig const& started) { return loop.launch(started); });
        loop.set_controller(controller.get());
        server = TRY(vmm::api::ApiServer::start(io, api->socket, *controller));
    }
    if (snapshots.restore)
        TRY(loop.adopt(TRY(vmm::Machine::restore(*snapshots.restore, snapshots.restore_options)), config));
    else if (!api || !api->configured_by_api)
        TRY(loop.launch(config));
    auto outcome = loop.run();
    server.reset(); // the socket file goes; nothing answers for a machine that has ended
    return outcome;
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

    std::optional<ApiOptions> api;
    if (options.api_socket)
        api = ApiOptions { *options.api_socket, options.id, options.kernel.empty() && !options.restore };
    if (options.kernel.empty() && !api && !options.restore)
        return fail(Error::from_string("--kernel is required (or --restore DIR, or --api-sock PATH to configure the machine through the API)"));
    if (api && api->configured_by_api && !options.machine_options_given.empty())
        return fail(Error::from_string(fmt::format("{} describe the machine, which the API configures when --kernel is absent (PUT /boot-source, "
                                           "/machine-config, /drives, ...)", fmt::join(options.machine_options_given, ", "))));
    auto policy = options.on_reboot == "restart" ? RebootPolicy::Restart : RebootPolicy::Exit;
    if (options.restore && policy == RebootPolicy::Restart)
        return fail(Error::from_string("--on-reboot=restart cannot be used with --restore: a restored guest has no kernel to boot again"));
    SnapshotOptions snapshots;
    snapshots.restore = options.restore;
    snapshots.snapshot_to = options.snapshot_to;
    if (options.restore) {
        auto& restoring = snapshots.restore_options;
        restoring.serial = config.serial;
        restoring.state_dir = config.state_dir;
        restoring.irqchip = config.irqchip;
        restoring.start_time = config.start_time;
        if (options.cpus_given)
            restoring.cpus = config.cpus;
        if (options.memory_given)
            restoring.memory = config.memory;
    }
    auto reason = run_machines(config, policy, api, snapshots);
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
        "Kernel image: a Linux bzImage (vmlinuz), an ELF with a PVH entry note (vmlinux, PVH test guests), or a raw real-mode binary with "
        "--flat. Required unless --restore or --api-sock is given (then the API configures the machine)");
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
        "A virtio-blk disk, repeatable: PATH[,ro][,serial=S][,queues=N] for a raw image, vol:POOL/VOL[,ro][,serial=S][,queues=N] for a pool volume, or nbd:URI[,...] for an NBD export (nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH) (queues: 1 to 16, default 1)");
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
    run->add_option("--api-sock", options->api_socket,
        "Serve the per-VM API (Firecracker-compatible HTTP, docs/api.md) on this Unix socket, created with mode 0600. Without "
        "--kernel, kasou waits for the machine to be configured and started through it; with --kernel, the API controls the "
        "machine the command line started");
    run->add_option("--id", options->id, "The instance id the API reports (GET /)")->capture_default_str();
    auto* restore = run->add_option("--restore", options->restore,
        "Resume the guest saved in this snapshot directory instead of booting one; the machine is the snapshot's (--cpus, "
        "--memory and --irqchip, if given, must match it)");
    for (char const* machine_option : { "--kernel", "--initrd", "--flat", "--cmdline", "--cpu-features", "--disk", "--no-rng", "--cores", "--net",
             "--vsock", "--console", "--io-poll-us" })
        restore->excludes(machine_option);
    run->add_option("--snapshot-to", options->snapshot_to,
        "On SIGUSR1, pause the guest, write a snapshot into this directory (replacing an older one there) and resume; on SIGUSR2, "
        "the same, then stop (exit status 8)");
    run->callback([&action, options, &global, start, run] {
        options->cpus_given = run->count("--cpus") > 0;
        options->memory_given = run->count("--memory") > 0;
        for (auto const* name : MACHINE_OPTIONS) {
            if (run->count(name) > 0)
                options->machine_options_given.push_back(name);
        }
        action = [options, &global, start] { return run_machine(*options, global, start); };
    });
}

} // namespace kasou::cmd
