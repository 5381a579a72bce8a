#include "vmm/machine.h"

#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "arch/x86_64/acpi_tables.h"
#include "arch/x86_64/boot_cpu_state.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/xsave_components.h"
#include "base/log.h"
#include "base/size.h"
#include "base/sys_file.h"
#include "base/try.h"
#include "bus/offset_window.h"
#include "devices/acpi_power.h"
#include "devices/boot_timer.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "emu/engine/emu_engine.h"
#include "kvm/kvm_engine.h"
#include "sched/memory_binding.h"

namespace kasou::vmm {

namespace {

// Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3A, 11.4.1 and 11.5.1).
constexpr size_t APIC_SPURIOUS_VECTOR = 0xF0;
constexpr size_t APIC_LVT_LINT0 = 0x350;
constexpr size_t APIC_LVT_LINT1 = 0x360;
constexpr u32 APIC_SOFTWARE_ENABLE = 1u << 8;
constexpr u32 APIC_MODE_NMI = 4u << 8;
constexpr u32 APIC_MODE_EXTINT = 7u << 8;

constexpr u32 UNHANDLED_WARNING_LIMIT = 10;

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

} // namespace

u64 host_memory()
{
    return static_cast<u64>(::sysconf(_SC_PHYS_PAGES)) * static_cast<u64>(::sysconf(_SC_PAGESIZE));
}

namespace {

u32 read_apic_register(arch::x86_64::LapicRegisters const& registers, size_t offset)
{
    u32 value;
    std::memcpy(&value, registers.data() + offset, sizeof(value));
    return value;
}

void write_apic_register(arch::x86_64::LapicRegisters& registers, size_t offset, u32 value)
{
    std::memcpy(registers.data() + offset, &value, sizeof(value));
}

// XCR0 starts with every XSAVE component the CPUID table offers, which is what a guest kernel
// writes anyway. KVM reports the XSAVE area size for the XCR0 it last saw; on hosts that do not
// show it the guest's own XSETBV (nested SVM under QEMU's TCG), a reset XCR0 would leave that size
// wrong for the whole run.
ErrorOr<void> start_with_offered_xcr0(engine::Vcpu& vcpu, arch::x86_64::CpuidTable const& cpuid)
{
    u64 xcr0 = arch::x86_64::offered_xcr0(cpuid);
    if (xcr0 == 0)
        return {};
    return vcpu.set_xcrs({ arch::x86_64::Xcr { 0, xcr0 } });
}

// The one place that chooses the execution engine (--accel).
ErrorOr<std::unique_ptr<engine::Engine>> open_engine(Accel accel)
{
    switch (accel) {
    case Accel::Kvm:
        return TRY(kvm::KvmEngine::open());
    case Accel::Emu:
        spdlog::info("engine: emu (kasou's software CPU), as --accel emu asks");
        return std::make_unique<emu::EmuEngine>();
    case Accel::Auto:
        break;
    }
    auto kvm = kvm::KvmEngine::open();
    if (kvm) {
        spdlog::info("engine: KVM");
        return std::move(*kvm);
    }
    spdlog::info("engine: emu (kasou's software CPU), since KVM cannot be used here: {}", kvm.error().to_string());
    return std::make_unique<emu::EmuEngine>();
}

} // namespace

ErrorOr<std::unique_ptr<Machine>> Machine::create(MachineConfig config)
{
    std::unique_ptr<engine::Engine> engine = TRY(open_engine(config.accel));
    bool const software_only_host = std::string_view(engine->name()) == "KVM" && kvm::System::host_is_pvm();
    TRY(config.validate(host_memory(), static_cast<int>(engine->max_vcpus())));
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
    auto machine = TRY(build(std::move(config), std::move(engine), std::move(memory)));
    machine->m_kernel = kernel;
    auto& boot_vcpu = *machine->m_vcpus.front();
    auto regs = TRY(boot_vcpu.registers());
    auto sregs = TRY(boot_vcpu.system_registers());
    TRY(arch::x86_64::prepare_boot_cpu(machine->m_memory, kernel.entry, regs, sregs));
    TRY(boot_vcpu.set_system_registers(sregs));
    TRY(boot_vcpu.set_registers(regs));
    if (kernel.is_linux && software_only_host)
        spdlog::warn("this host's KVM is PVM (software-only, no VT-x/AMD-V): a stock Linux kernel runs its kernel code emulated, "
                     "thousands of times slower, and may stop with an emulation failure. Use a host with VT-x or AMD-V, "
                     "or a PVM-enabled guest kernel.");
    return machine;
}

ErrorOr<std::unique_ptr<Machine>> Machine::build(MachineConfig config, std::unique_ptr<engine::Engine> engine, memory::GuestMemory memory)
{
    auto interrupt_controllers = TRY(SplitIrqchip::choose(*engine, config.irqchip));
    auto vm = TRY(engine->create_vm({ interrupt_controllers }));
    for (u32 slot = 0; slot < memory.regions().size(); ++slot) {
        auto const& region = memory.regions()[slot];
        TRY(vm->map_memory(slot, region.guest_physical, region.size(), region.mapping.data(), false));
    }
    auto console = TRY(Console::open(config.serial));
    auto stop_event = TRY(EventFd::create());

    std::unique_ptr<Machine> machine(
        new Machine(std::move(config), std::move(engine), std::move(vm), std::move(memory), std::move(console), std::move(stop_event)));
    machine->m_interrupt_controllers = interrupt_controllers;
    TRY(machine->add_interrupt_controllers());
    TRY(machine->add_devices());
    TRY(machine->add_pci_devices());
    TRY(machine->place_vcpus());
    TRY(machine->create_vcpus());
    machine->m_pio_bus.freeze();
    machine->m_mmio_bus.freeze();
    return machine;
}

Machine::Machine(MachineConfig config, std::unique_ptr<engine::Engine> engine, std::unique_ptr<engine::Vm> vm, memory::GuestMemory memory,
    Console console, EventFd stop_event)
    : m_config(std::move(config))
    , m_engine(std::move(engine))
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
        (void)wait();
    }
}

ErrorOr<void> Machine::add_interrupt_controllers()
{
    // The whole GSI table is installed even without PCI devices: it also routes the PIT to IOAPIC
    // pin 2, as the MADT's interrupt source override says.
    m_routing = std::make_unique<GsiRouting>(*m_vm, m_interrupt_controllers);
    if (m_interrupt_controllers == engine::InterruptControllers::Split) {
        m_split_irqchip = TRY(SplitIrqchip::create(*m_vm, *m_routing));
        TRY(m_split_irqchip->attach(m_pio_bus, m_mmio_bus));
    }
    return {};
}

void Machine::set_isa_irq(u32 irq, bool level)
{
    if (m_split_irqchip)
        m_split_irqchip->set_irq(irq, level);
    else if (auto result = m_vm->set_irq_line(irq, level); !result)
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
    m_i8042 = std::make_shared<devices::I8042>(
        [this] { request_stop(StopReason::make(StopKind::Reboot, "guest reset the machine through the i8042 controller")); },
        [this] {
            set_isa_irq(devices::I8042::KEYBOARD_IRQ, true);
            set_isa_irq(devices::I8042::KEYBOARD_IRQ, false);
        });
    for (u64 offset : { devices::I8042::DATA_OFFSET, devices::I8042::COMMAND_OFFSET })
        TRY(m_pio_bus.insert(std::make_shared<bus::OffsetWindow>(m_i8042, offset), devices::I8042::PORT + offset, 1, "i8042"));
    TRY(m_pio_bus.insert(std::make_shared<devices::AcpiPowerControl>(
                             [this] { request_stop(StopReason::make(StopKind::PoweredOff, "guest powered off (ACPI S5)")); },
                             [this] { request_stop(StopReason::make(StopKind::Reboot, "guest reset the machine through the ACPI reset register")); }),
        devices::AcpiPowerControl::PORT, devices::AcpiPowerControl::PORT_COUNT, "ACPI power control"));
    u64 low_end = m_memory.regions().front().end();
    u64 high_size = m_memory.size() - m_memory.regions().front().size();
    m_rtc = std::make_shared<devices::CmosRtc>(low_end, high_size, [] { return std::time(nullptr); });
    TRY(m_pio_bus.insert(m_rtc,
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
    m_pci = TRY(PciDevices::create(*m_vm, m_memory, *m_routing, options));
    TRY(m_pci->attach(m_pio_bus, m_mmio_bus));
    // One commit for the whole table: each one waits for KVM's readers to drain.
    TRY(m_routing->commit());
    return {};
}

ErrorOr<void> Machine::place_vcpus()
{
    if (!m_config.cores)
        return {};
    sched::HostCoresOptions cores;
    cores.state_dir = m_config.state_dir; // the host-wide record of placements
    m_cores = TRY(sched::HostCores::open(cores));
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
    auto topology = GuestTopology::single_package(m_config.cpus);
    if (m_config.smt && m_config.cpus % 2 == 0)
        topology = GuestTopology { 2, m_config.cpus / 2, 1 };
    if (m_placement && m_placement->guest.vcpu_count() == m_config.cpus)
        topology = m_placement->guest;
    for (u32 index = 0; index < m_config.cpus; ++index) {
        auto vcpu = TRY(m_vm->create_vcpu(index));
        auto cpuid = arch::x86_64::shape_cpuid(m_engine->supported_cpuid(), index, topology, m_config.hidden_features);
        TRY(vcpu->set_cpuid(cpuid));
        TRY(start_with_offered_xcr0(*vcpu, cpuid));
        // Enable the local APIC with LINT0 as ExtINT (the PIC) and LINT1 as NMI, as firmware would;
        // without it some hosts deliver no interrupt at all.
        auto lapic = TRY(vcpu->lapic());
        write_apic_register(lapic, APIC_SPURIOUS_VECTOR, read_apic_register(lapic, APIC_SPURIOUS_VECTOR) | APIC_SOFTWARE_ENABLE);
        write_apic_register(lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
        write_apic_register(lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
        TRY(vcpu->set_lapic(lapic));
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
    // Taking the lock orders this after any waiter's look at m_stopping.
    { std::lock_guard guard(m_state_lock); }
    m_state_changed.notify_all();
}

void Machine::kick_vcpus()
{
    for (size_t i = 0; i < m_threads.size(); ++i)
        m_vcpus[i]->kick();
}

template<class Predicate>
void Machine::kick_until(Predicate done)
{
    // Kick again now and then: cheap, and it does not depend on how an engine catches a thread
    // that was just about to enter the guest when the first kick landed.
    for (;;) {
        kick_vcpus();
        std::unique_lock lock(m_state_lock);
        if (m_state_changed.wait_for(lock, std::chrono::milliseconds(10), [&] { return done() || m_stopping.load(); }))
            return;
    }
}

ErrorOr<void> Machine::start()
{
    if (!m_threads.empty() || m_stopping.load())
        return make_error(ErrorKind::Busy, "the machine was already started");
    m_running_vcpus = static_cast<u32>(m_vcpus.size());
    for (u32 index = 0; index < m_vcpus.size(); ++index)
        m_threads.emplace_back([this, index] { vcpu_thread(index); });
    return {};
}

StopReason Machine::wait()
{
    {
        std::unique_lock lock(m_state_lock);
        m_state_changed.wait(lock, [this] { return m_stopping.load(); });
    }
    for (;;) {
        kick_vcpus();
        std::unique_lock lock(m_state_lock);
        if (m_state_changed.wait_for(lock, std::chrono::milliseconds(1), [this] { return m_running_vcpus == 0; }))
            break;
    }
    for (auto& thread : m_threads)
        thread.join();
    m_threads.clear();
    std::lock_guard guard(m_stop_lock);
    return *m_stop_reason;
}

void Machine::park_vcpu()
{
    std::unique_lock lock(m_state_lock);
    ++m_parked_vcpus;
    m_state_changed.notify_all();
    m_state_changed.wait(lock, [this] { return !m_pause_requested.load() || m_stopping.load(); });
    --m_parked_vcpus;
}

ErrorOr<void> Machine::pause()
{
    {
        std::lock_guard lock(m_state_lock);
        if (m_stopping.load())
            return make_error(ErrorKind::Busy, "the machine is stopping or has stopped, so it cannot be paused");
        if (m_threads.empty())
            return make_error(ErrorKind::Busy, "the machine is not running, so it cannot be paused");
        if (m_paused)
            return {};
        m_pause_requested.store(true);
    }
    kick_until([this] { return m_parked_vcpus == m_running_vcpus; });
    if (m_stopping.load()) {
        {
            std::lock_guard lock(m_state_lock);
            m_pause_requested.store(false);
        }
        m_state_changed.notify_all();
        return make_error(ErrorKind::Busy, "the machine stopped while it was being paused");
    }
    // No vCPU runs now, so no driver can start or reset a device meanwhile.
    m_pci->pause();
    if (m_split_irqchip)
        m_split_irqchip->pause();
    std::lock_guard lock(m_state_lock);
    m_paused = true;
    return {};
}

ErrorOr<void> Machine::resume()
{
    {
        std::lock_guard lock(m_state_lock);
        if (!m_paused)
            return make_error(ErrorKind::Busy, "the machine is not paused, so it cannot be resumed");
    }
    if (m_split_irqchip)
        m_split_irqchip->resume();
    m_pci->resume();
    {
        std::lock_guard lock(m_state_lock);
        m_paused = false;
        m_pause_requested.store(false);
    }
    m_state_changed.notify_all();
    return {};
}

ErrorOr<std::vector<arch::x86_64::VcpuState>> Machine::vcpu_states()
{
    {
        std::lock_guard lock(m_state_lock);
        if (!m_paused)
            return make_error(ErrorKind::Busy, "vCPU state is read only while the machine is paused");
    }
    std::vector<arch::x86_64::VcpuState> states;
    for (auto& vcpu : m_vcpus)
        states.push_back(TRY(vcpu->state().map_error([&](Error const& error) { return error.with_prefix(fmt::format("vCPU {}", vcpu->index())); })));
    return states;
}

ErrorOr<void> Machine::set_vcpu_states(std::vector<arch::x86_64::VcpuState> const& states)
{
    {
        std::lock_guard lock(m_state_lock);
        if (!m_paused)
            return make_error(ErrorKind::Busy, "vCPU state is written only while the machine is paused");
    }
    if (states.size() != m_vcpus.size())
        return make_error(fmt::format("{} vCPU states given for {} vCPUs", states.size(), m_vcpus.size()));
    for (size_t i = 0; i < states.size(); ++i)
        TRY(m_vcpus[i]->set_state(states[i]).map_error([&](Error const& error) { return error.with_prefix(fmt::format("vCPU {}", i)); }));
    return {};
}

ErrorOr<void> Machine::send_ctrl_alt_del()
{
    {
        std::lock_guard lock(m_state_lock);
        if (m_threads.empty() || m_stopping.load())
            return make_error(ErrorKind::Busy, "the machine is not running");
    }
    return m_i8042->send_ctrl_alt_del();
}

int Machine::console_input_fd() const
{
    // With a virtio console, keystrokes belong to it; the UART only prints.
    return m_config.virtio_console ? -1 : m_console.input_fd();
}

void Machine::console_input(std::span<u8 const> bytes)
{
    m_serial->enqueue_input(bytes);
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
