#include "emu/engine/emu_vm.h"

#include <algorithm>
#include <csignal>
#include <poll.h>

#include "base/log.h"
#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/try.h"
#include "emu/engine/emu_vcpu.h"

namespace kasou::emu {

namespace {

// MSI address and data fields (Intel SDM vol. 3A, 11.11.1 and 11.11.2).
constexpr u32 MSI_DELIVERY_MODE_SHIFT = 8;
constexpr u32 MSI_LEVEL_TRIGGERED = 1u << 15;
constexpr u32 BROADCAST = 0xFF;

} // namespace

ErrorOr<std::unique_ptr<EmuVm>> EmuVm::create()
{
    auto stop = TRY(EventFd::create());
    return std::unique_ptr<EmuVm>(new EmuVm(std::move(stop)));
}

EmuVm::EmuVm(EventFd stop)
    : m_stop(std::move(stop))
    , m_irqfds_changed(MUST(EventFd::create()))
{
}

EmuVm::~EmuVm()
{
    if (m_thread.joinable()) {
        (void)m_stop.signal();
        m_thread.join();
    }
}

ErrorOr<void> EmuVm::map_memory(u32, u64 guest_physical, u64 size, void* host, bool log_dirty)
{
    if (log_dirty)
        return make_error(ErrorKind::Unsupported, "the software CPU keeps no dirty-page log yet");
    m_memory.add(guest_physical, size, static_cast<u8*>(host));
    return {};
}

ErrorOr<std::vector<u64>> EmuVm::dirty_log(u32, u64)
{
    return make_error(ErrorKind::Unsupported, "the software CPU keeps no dirty-page log yet");
}

ErrorOr<engine::KernelIrqchipState> EmuVm::kernel_irqchip_state()
{
    return make_error(ErrorKind::Unsupported, "the software CPU has no in-kernel interrupt controllers");
}

ErrorOr<void> EmuVm::set_kernel_irqchip_state(engine::KernelIrqchipState const&)
{
    return make_error(ErrorKind::Unsupported, "the software CPU has no in-kernel interrupt controllers");
}

ErrorOr<engine::ClockState> EmuVm::clock()
{
    return make_error(ErrorKind::Unsupported, "snapshots of the software CPU's clock are not implemented yet");
}

ErrorOr<void> EmuVm::set_clock(engine::ClockState const&)
{
    return make_error(ErrorKind::Unsupported, "snapshots of the software CPU's clock are not implemented yet");
}

ErrorOr<std::unique_ptr<engine::Vcpu>> EmuVm::create_vcpu(u32 index)
{
    auto vcpu = std::make_unique<EmuVcpu>(*this, index);
    std::lock_guard guard(m_lock);
    m_vcpus.push_back(vcpu.get());
    return vcpu;
}

void EmuVm::vcpu_gone(EmuVcpu* vcpu)
{
    std::lock_guard guard(m_lock);
    std::erase(m_vcpus, vcpu);
}

ErrorOr<void> EmuVm::set_irq_line(u32, bool)
{
    return make_error(ErrorKind::Unsupported, "the software CPU has no PIC or IOAPIC of its own");
}

void EmuVm::deliver_fixed(u32 destination, u8 vector, bool level)
{
    for (auto* vcpu : m_vcpus) {
        if (destination == BROADCAST || vcpu->apic_id() == destination)
            vcpu->accept_interrupt(vector, level);
    }
}

ErrorOr<void> EmuVm::signal_msi(engine::MsiMessage message)
{
    u32 const destination = (message.address >> 12) & 0xFF;
    u8 const vector = message.data & 0xFF;
    u32 const mode = (message.data >> MSI_DELIVERY_MODE_SHIFT) & 7;
    if (mode != 0 && mode != 1)
        return make_error(ErrorKind::Unsupported, fmt::format("MSI delivery mode {} is not supported by the software CPU", mode));
    std::lock_guard guard(m_lock);
    deliver_fixed(destination, vector, message.data & MSI_LEVEL_TRIGGERED);
    return {};
}

void EmuVm::send_ipi(u32 from, Lapic::Ipi const& ipi)
{
    std::lock_guard guard(m_lock);
    for (auto* vcpu : m_vcpus) {
        bool target = false;
        switch (ipi.shorthand) {
        case 0: target = ipi.destination == 0xFFFF'FFFF || ipi.destination == BROADCAST || vcpu->apic_id() == ipi.destination; break;
        case 1: target = vcpu->apic_id() == from; break;
        case 2: target = true; break;
        default: target = vcpu->apic_id() != from; break;
        }
        if (!target)
            continue;
        switch (ipi.delivery_mode) {
        case 0:
        case 1:
            vcpu->accept_interrupt(ipi.vector, false);
            break;
        case 5:
            vcpu->init_signal();
            break;
        case 6:
            vcpu->startup_signal(ipi.vector);
            break;
        default:
            spdlog::warn("emu: IPI delivery mode {} is not supported", ipi.delivery_mode);
            break;
        }
    }
}

ErrorOr<void> EmuVm::set_gsi_routes(std::span<engine::GsiRoute const> routes)
{
    std::lock_guard guard(m_lock);
    m_routes.assign(routes.begin(), routes.end());
    return {};
}

ErrorOr<void> EmuVm::register_irqfd(int event_fd, u32 gsi)
{
    {
        std::lock_guard guard(m_lock);
        m_irqfds.push_back({ event_fd, gsi });
    }
    if (!m_thread.joinable()) {
        sigset_t all, previous;
        sigfillset(&all);
        ::pthread_sigmask(SIG_BLOCK, &all, &previous);
        m_thread = std::thread([this] { irqfd_thread(); });
        ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }
    return m_irqfds_changed.signal();
}

ErrorOr<void> EmuVm::unregister_irqfd(int event_fd, u32 gsi)
{
    {
        std::lock_guard guard(m_lock);
        std::erase_if(m_irqfds, [&](Irqfd const& irqfd) { return irqfd.fd == event_fd && irqfd.gsi == gsi; });
    }
    return m_irqfds_changed.signal();
}

ErrorOr<void> EmuVm::register_ioeventfd(int event_fd, u64 address, u32 size, bool pio)
{
    std::lock_guard guard(m_lock);
    m_ioeventfds.push_back({ event_fd, address, size, pio });
    return {};
}

ErrorOr<void> EmuVm::unregister_ioeventfd(int event_fd, u64 address, u32 size, bool pio)
{
    std::lock_guard guard(m_lock);
    std::erase_if(m_ioeventfds, [&](Ioeventfd const& entry) {
        return entry.fd == event_fd && entry.address == address && entry.size == size && entry.pio == pio;
    });
    return {};
}

bool EmuVm::ioeventfd_write(u64 address, u32 size, bool pio)
{
    std::lock_guard guard(m_lock);
    for (auto const& entry : m_ioeventfds) {
        if (entry.pio == pio && entry.address == address && (entry.size == 0 || entry.size == size)) {
            u64 one = 1;
            (void)sys::write(entry.fd, &one, sizeof(one));
            return true;
        }
    }
    return false;
}

void EmuVm::irqfd_thread()
{
    std::vector<pollfd> fds;
    std::vector<u32> gsis;
    for (;;) {
        fds.clear();
        gsis.clear();
        fds.push_back({ m_stop.fd(), POLLIN, 0 });
        fds.push_back({ m_irqfds_changed.fd(), POLLIN, 0 });
        {
            std::lock_guard guard(m_lock);
            for (auto const& irqfd : m_irqfds) {
                fds.push_back({ irqfd.fd, POLLIN, 0 });
                gsis.push_back(irqfd.gsi);
            }
        }
        if (!sys::poll(fds.data(), fds.size(), -1))
            continue;
        if (fds[0].revents)
            return;
        if (fds[1].revents)
            (void)m_irqfds_changed.consume();
        for (size_t i = 2; i < fds.size(); ++i) {
            if (!(fds[i].revents & POLLIN))
                continue;
            u64 count;
            (void)sys::read(fds[i].fd, &count, sizeof(count));
            std::lock_guard guard(m_lock);
            for (auto const& route : m_routes) {
                if (route.gsi != gsis[i - 2])
                    continue;
                if (auto const* msi = std::get_if<engine::MsiMessage>(&route.target))
                    deliver_fixed((msi->address >> 12) & 0xFF, msi->data & 0xFF, msi->data & MSI_LEVEL_TRIGGERED);
            }
        }
    }
}

} // namespace kasou::emu
