#include "vmm/machine.h"

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "arch/x86_64/acpi_tables.h"
#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/xsave_components.h"
#include "base/log.h"
#include "base/size.h"
#include "base/sys.h"
#include "base/try.h"
#include "bus/offset_window.h"
#include "devices/acpi_power.h"
#include "devices/boot_timer.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "sched/memory_binding.h"

namespace kasou::vmm {

namespace {

// Addresses KVM needs on Intel hosts for real-mode emulation: three pages below the BIOS area,
// inside the MMIO hole, where nothing else lives (the same places QEMU and Firecracker use).
constexpr u64 KVM_TSS_ADDRESS = 0xFFFB'D000;
constexpr u64 KVM_IDENTITY_MAP_ADDRESS = 0xFFFB'C000;

// Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3A, 11.4.1 and 11.5.1).
constexpr size_t APIC_SPURIOUS_VECTOR = 0xF0;
constexpr size_t APIC_LVT_LINT0 = 0x350;
constexpr size_t APIC_LVT_LINT1 = 0x360;
constexpr u32 APIC_SOFTWARE_ENABLE = 1u << 8;
constexpr u32 APIC_MODE_NMI = 4u << 8;
constexpr u32 APIC_MODE_EXTINT = 7u << 8;

constexpr u32 UNHANDLED_WARNING_LIMIT = 10;

int kick_signal() { return SIGRTMIN; }

void ignore_kick(int) { }

// Reads a whole file the guest gets (kernel, initrd); `what` names it in errors.
ErrorOr<std::vector<u8>> read_guest_file(char const* what, std::string const& path, u64 memory_size)
{
    auto fd = TRY(sys::open(path, O_RDONLY).map_error([&](Error const& e) { return e.with_prefix(what); }));
    u64 size = TRY(sys::file_size(fd.get()));
    if (size > memory_size)
        return make_error(fmt::format("{} {} ({}) is larger than guest memory ({})", what, path, format_size(size), format_size(memory_size)));
    std::vector<u8> image(size);
    TRY(sys::pread_exact(fd.get(), image.data(), image.size(), 0).map_error([&](Error const& e) { return e.with_prefix(fmt::format("{} {}", what, path)); }));
    return image;
}

u64 host_memory()
{
    return static_cast<u64>(::sysconf(_SC_PHYS_PAGES)) * static_cast<u64>(::sysconf(_SC_PAGESIZE));
}

u32 read_apic_register(kvm_lapic_state const& state, size_t offset)
{
    u32 value;
    std::memcpy(&value, state.regs + offset, sizeof(value));
    return value;
}

void write_apic_register(kvm_lapic_state& state, size_t offset, u32 value)
{
    std::memcpy(state.regs + offset, &value, sizeof(value));
}

// XCR0 starts with every XSAVE component the CPUID table offers, which is what a guest kernel
// writes anyway. KVM reports the XSAVE area size for the XCR0 it last saw; on hosts that do not
// show it the guest's own XSETBV (nested SVM under QEMU's TCG), a reset XCR0 would leave that size
// wrong for the whole run.
ErrorOr<void> start_with_offered_xcr0(kvm::Vcpu& vcpu, std::vector<kvm_cpuid_entry2> const& cpuid)
{
    u64 xcr0 = arch::x86_64::offered_xcr0(cpuid);
    if (xcr0 == 0)
        return {};
    kvm_xcrs xcrs {};
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = xcr0;
    return vcpu.set_xcrs(xcrs);
}

} // namespace

ErrorOr<std::unique_ptr<Machine>> Machine::create(MachineConfig config)
{
    auto system = TRY(kvm::System::open());
    TRY(config.validate(host_memory(), system.max_vcpus()));
    for (auto [capability, name] : { std::pair { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" }, { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
             { KVM_CAP_PIT2, "KVM_CAP_PIT2" }, { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" } }) {
        if (!system.check_extension(capability))
            return make_error(fmt::format("this host's KVM lacks {}, which kasou needs", name));
    }
    auto image = TRY(read_guest_file("kernel", config.kernel_path, config.memory));
    std::vector<u8> initrd;
    if (config.initrd_path) {
        initrd = TRY(read_guest_file("initrd", *config.initrd_path, config.memory));
        if (initrd.empty())
            return make_error(fmt::format("initrd {} is empty", *config.initrd_path));
    }
    auto memory = TRY(memory::GuestMemory::create(config.memory));
    arch::x86_64::AcpiConfig acpi { config.cpus,
        { devices::AcpiPowerControl::SLEEP_CONTROL, devices::AcpiPowerControl::SLEEP_STATUS, devices::AcpiPowerControl::RESET,
            devices::AcpiPowerControl::RESET_VALUE, devices::AcpiPowerControl::S5_SLEEP_TYPE },
        arch::x86_64::AcpiPciHost { PCI_ECAM, static_cast<u32>(PCI_BAR_WINDOW), static_cast<u32>(PCI_BAR_WINDOW_SIZE) } };
    arch::x86_64::KernelOptions options { config.flat, config.effective_command_line(), initrd, TRY(arch::x86_64::write_acpi_tables(memory, acpi)) };
    auto kernel = TRY(arch::x86_64::load_kernel(memory, image, options).map_error(
        [&](Error const& error) { return error.with_prefix(fmt::format("kernel {}", config.kernel_path)); }));

    auto irqchip_mode = TRY(SplitIrqchip::choose_mode(system, config.irqchip));
    auto vm = TRY(system.create_vm());
    TRY(vm.set_tss_address(KVM_TSS_ADDRESS));
    TRY(vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDRESS));
    if (irqchip_mode == IrqchipMode::Split)
        TRY(vm.enable_split_irqchip(GsiRouting::IOAPIC_PINS));
    else {
        TRY(vm.create_irqchip());
        TRY(vm.create_pit());
    }
    for (u32 slot = 0; slot < memory.regions().size(); ++slot) {
        auto const& region = memory.regions()[slot];
        TRY(vm.set_user_memory_region(slot, region.guest_physical, region.size(), region.mapping.data()));
    }
    auto console = TRY(Console::open(config.serial));
    auto stop_event = TRY(EventFd::create());

    std::unique_ptr<Machine> machine(
        new Machine(std::move(config), std::move(system), std::move(vm), std::move(memory), std::move(console), std::move(stop_event)));
    machine->m_kernel = kernel;
    machine->m_irqchip_mode = irqchip_mode;
    TRY(machine->add_interrupt_controllers());
    TRY(machine->add_devices());
    TRY(machine->add_pci_devices());
    TRY(machine->place_vcpus());
    TRY(machine->create_vcpus());
    machine->m_pio_bus.freeze();
    machine->m_mmio_bus.freeze();
    if (kernel.is_linux && kvm::System::host_is_pvm())
        spdlog::warn("this host's KVM is PVM (software-only, no VT-x/AMD-V): a stock Linux kernel runs its kernel code emulated, "
                     "thousands of times slower, and may stop with an emulation failure. Use a host with VT-x or AMD-V, "
                     "or a PVM-enabled guest kernel.");
    return machine;
}

Machine::Machine(MachineConfig config, kvm::System system, kvm::Vm vm, memory::GuestMemory memory, Console console, EventFd stop_event)
    : m_config(std::move(config))
    , m_system(std::move(system))
    , m_vm(std::move(vm))
    , m_memory(std::move(memory))
    , m_console(std::move(console))
    , m_stop_event(std::move(stop_event))
{
}

Machine::~Machine()
{
    if (!m_threads.empty()) {
        request_stop(StopReason::make(StopKind::Signal, "machine destroyed while running"));
        kick_vcpus();
        for (auto& thread : m_threads)
            thread.join();
    }
}

ErrorOr<void> Machine::add_interrupt_controllers()
{
    // The whole GSI table is installed even without PCI devices: it also routes the PIT to IOAPIC
    // pin 2, as the MADT's interrupt source override says.
    m_routing = std::make_unique<GsiRouting>(m_vm, m_irqchip_mode);
    if (m_irqchip_mode == IrqchipMode::Split) {
        m_split_irqchip = TRY(SplitIrqchip::create(m_vm, *m_routing, kick_signal()));
        TRY(m_split_irqchip->attach(m_pio_bus, m_mmio_bus));
    }
    return {};
}

void Machine::set_isa_irq(u32 irq, bool level)
{
    if (m_split_irqchip)
        m_split_irqchip->set_irq(irq, level);
    else if (auto result = m_vm.irq_line(irq, level); !result)
        spdlog::warn("IRQ {}: {}", irq, result.error().to_string());
}

ErrorOr<void> Machine::add_devices()
{
    m_serial = std::make_shared<devices::Serial16550>(
        [this](std::span<u8 const> bytes) { m_console.write(bytes); },
        [this](bool level) { set_isa_irq(devices::Serial16550::COM1_IRQ, level); });
    TRY(m_pio_bus.insert(m_serial, devices::Serial16550::COM1_PORT, devices::Serial16550::PORT_COUNT, "COM1"));
    TRY(m_pio_bus.insert(std::make_shared<devices::DebugExit>([this](u32 value) { request_stop(StopReason::debug_exit(value)); }),
        devices::DebugExit::PORT, devices::DebugExit::PORT_COUNT, "debug exit"));
    TRY(m_pio_bus.insert(std::make_shared<devices::BootTimer>(m_config.start_time,
                             [](u8 marker, devices::BootTimer::Clock::duration elapsed) {
                                 spdlog::info("boot timer: guest marker {} at {:.3f} ms since kasou started", marker,
                                     std::chrono::duration<double, std::milli>(elapsed).count());
                             }),
        devices::BootTimer::PORT, 1, "boot timer"));
    auto i8042 = std::make_shared<devices::I8042>(
        [this] { request_stop(StopReason::make(StopKind::Reboot, "guest reset the machine through the i8042 controller")); });
    for (u64 offset : { devices::I8042::DATA_OFFSET, devices::I8042::COMMAND_OFFSET })
        TRY(m_pio_bus.insert(std::make_shared<bus::OffsetWindow>(i8042, offset), devices::I8042::PORT + offset, 1, "i8042"));
    TRY(m_pio_bus.insert(std::make_shared<devices::AcpiPowerControl>(
                             [this] { request_stop(StopReason::make(StopKind::PoweredOff, "guest powered off (ACPI S5)")); },
                             [this] { request_stop(StopReason::make(StopKind::Reboot, "guest reset the machine through the ACPI reset register")); }),
        devices::AcpiPowerControl::PORT, devices::AcpiPowerControl::PORT_COUNT, "ACPI power control"));
    u64 low_end = m_memory.regions().front().end();
    u64 high_size = m_memory.size() - m_memory.regions().front().size();
    TRY(m_pio_bus.insert(std::make_shared<devices::CmosRtc>(low_end, high_size, [] { return std::time(nullptr); }),
        devices::CmosRtc::PORT, devices::CmosRtc::PORT_COUNT, "CMOS RTC"));
    return {};
}

ErrorOr<void> Machine::add_pci_devices()
{
    PciDevices::Options options { m_config.disks, m_config.entropy, m_config.state_dir, m_config.nets, m_config.vsock, std::nullopt,
        m_config.io_poll };
    // A polling I/O thread needs a CPU the vCPUs leave free: otherwise it would only hold back a
    // vCPU, perhaps the one that is to make the next request.
    cpu_set_t allowed;
    if (options.io_poll.count() > 0 && ::sched_getaffinity(0, sizeof(allowed), &allowed) == 0 &&
        static_cast<u32>(CPU_COUNT(&allowed)) <= m_config.cpus) {
        spdlog::debug("{} CPUs to run on for {} vCPUs: virtio I/O threads will not poll", CPU_COUNT(&allowed), m_config.cpus);
        options.io_poll = std::chrono::nanoseconds { 0 };
    }
    if (m_config.virtio_console)
        options.console_fds = std::pair { m_console.input_fd(), m_console.output_fd() };
    m_pci = TRY(PciDevices::create(m_vm, m_memory, *m_routing, options));
    TRY(m_pci->attach(m_pio_bus, m_mmio_bus));
    // One commit for the whole table: each one waits for KVM's readers to drain.
    TRY(m_routing->commit());
    return {};
}

ErrorOr<void> Machine::place_vcpus()
{
    if (!m_config.cores)
        return {};
    m_cores = TRY(sched::HostCores::open({}));
    m_placement = TRY(m_cores->allocate_for_run(m_config.cpus, *m_config.cores).map_error(
        [](Error const& error) { return error.with_prefix("--cores"); }));
    spdlog::info("vCPUs run on host CPUs {}", fmt::join(m_placement->cpus, ","));
    // With more than one NUMA node, guest RAM follows the group's CPUs.
    if (m_cores->topology().numa_nodes().size() > 1 && !m_placement->nodes.empty()) {
        for (auto const& region : m_memory.regions())
            TRY(sched::bind_memory_to_nodes(region.mapping.data(), region.size(), m_placement->nodes));
    }
    return {};
}

ErrorOr<void> Machine::create_vcpus()
{
    auto topology = arch::x86_64::CpuTopology::single_package(m_config.cpus);
    if (m_placement) {
        auto const& guest = m_placement->guest;
        arch::x86_64::CpuTopology placed { guest.threads_per_core, guest.cores_per_package, guest.packages };
        if (placed.vcpu_count() == m_config.cpus)
            topology = placed;
    }
    for (u32 index = 0; index < m_config.cpus; ++index) {
        auto vcpu = TRY(m_vm.create_vcpu(index));
        auto cpuid = arch::x86_64::shape_cpuid(m_system.supported_cpuid(), index, topology, m_config.hidden_features);
        TRY(vcpu.set_cpuid(cpuid));
        TRY(start_with_offered_xcr0(vcpu, cpuid));
        // Enable the local APIC with LINT0 as ExtINT (the PIC) and LINT1 as NMI, as firmware would;
        // without it some hosts deliver no interrupt at all.
        auto lapic = TRY(vcpu.lapic());
        write_apic_register(lapic, APIC_SPURIOUS_VECTOR, read_apic_register(lapic, APIC_SPURIOUS_VECTOR) | APIC_SOFTWARE_ENABLE);
        write_apic_register(lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
        write_apic_register(lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
        TRY(vcpu.set_lapic(lapic));
        if (index == 0) {
            auto regs = TRY(vcpu.regs());
            auto sregs = TRY(vcpu.sregs());
            TRY(arch::x86_64::prepare_boot_cpu(m_memory, m_kernel.entry, regs, sregs));
            TRY(vcpu.set_sregs(sregs));
            TRY(vcpu.set_regs(regs));
        }
        m_vcpus.push_back(std::move(vcpu));
    }
    return {};
}

void Machine::request_stop(StopReason reason)
{
    {
        std::lock_guard guard(m_stop_lock);
        if (m_stop_reason)
            return;
        m_stop_reason = std::move(reason);
    }
    m_stopping.store(true, std::memory_order_release);
    (void)m_stop_event.signal();
}

void Machine::kick_vcpus()
{
    for (size_t i = 0; i < m_threads.size(); ++i) {
        m_vcpus[i].request_immediate_exit();
        ::pthread_kill(m_threads[i].native_handle(), kick_signal());
    }
}

StopReason Machine::run()
{
    struct sigaction kick {};
    kick.sa_handler = ignore_kick; // no SA_RESTART: KVM_RUN must return EINTR
    ::sigaction(kick_signal(), &kick, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals, previous;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);

    m_running_vcpus = static_cast<u32>(m_vcpus.size());
    for (u32 index = 0; index < m_vcpus.size(); ++index)
        m_threads.emplace_back([this, index] { vcpu_thread(index); });
    control_loop();
    // Keep kicking until every vCPU thread has left KVM_RUN: a thread may be between its stop check
    // and KVM_RUN when the first kick lands, and immediate_exit catches exactly that case.
    while (m_running_vcpus.load() > 0) {
        kick_vcpus();
        ::usleep(1000);
    }
    for (auto& thread : m_threads)
        thread.join();
    m_threads.clear();
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    std::lock_guard guard(m_stop_lock);
    return *m_stop_reason;
}

void Machine::control_loop()
{
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    Fd signals(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
    // With a virtio console, keystrokes belong to it; the UART only prints.
    int input_fd = m_config.virtio_console ? -1 : m_console.input_fd();
    while (!m_stopping.load(std::memory_order_acquire)) {
        pollfd fds[3] = {
            { m_stop_event.fd(), POLLIN, 0 },
            { signals.get(), POLLIN, 0 },
            { input_fd, POLLIN, 0 },
        };
        int ready = ::poll(fds, input_fd >= 0 ? 3 : 2, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            request_stop(StopReason::make(StopKind::VcpuFailure, fmt::format("control loop: poll failed: {}", std::strerror(errno))));
            break;
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info {};
            if (::read(signals.get(), &info, sizeof(info)) == sizeof(info))
                request_stop(StopReason::make(StopKind::Signal, fmt::format("stopped by {}", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM")));
        }
        if (input_fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            u8 buffer[256];
            ssize_t n = ::read(input_fd, buffer, sizeof(buffer));
            if (n > 0)
                m_serial->enqueue_input(std::span(buffer, static_cast<size_t>(n)));
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                input_fd = -1; // end of input: the guest keeps running without it
        }
    }
}

void Machine::warn_unhandled(char const* what, u64 address, u32 size, bool is_write)
{
    u32 count = m_unhandled_warnings.fetch_add(1);
    if (count < UNHANDLED_WARNING_LIMIT)
        spdlog::warn("guest {} of {} byte(s) at {} {:#x}: no device there ({})", is_write ? "write" : "read", size, what, address,
            is_write ? "ignored" : "reads as all ones");
    else if (count == UNHANDLED_WARNING_LIMIT)
        spdlog::warn("further accesses to addresses without a device are not reported");
}

} // namespace kasou::vmm
