#include "vmm/split_irqchip.h"

#include <algorithm>
#include <csignal>
#include <ctime>
#include <poll.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sys_event.h"
#include "base/try.h"
#include "emu/port_window.h"

namespace kasou::vmm {

namespace {

// The MADT's interrupt source override: ISA IRQ 0 (the PIT) arrives at IOAPIC pin 2.
constexpr u32 PIT_IOAPIC_PIN = 2;

// The shortest interval between two wake-ups of the PIT's host timer (KVM's min_timer_period_us
// is 200 as well): a guest that programs a count of 1 (838 ns) cannot make kasou spin.
constexpr u64 MIN_TIMER_PERIOD_NS = 200'000;

u64 monotonic_ns()
{
    timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<u64>(now.tv_sec) * 1'000'000'000 + static_cast<u64>(now.tv_nsec);
}

} // namespace

ErrorOr<engine::InterruptControllers> SplitIrqchip::choose(engine::Engine const& engine, std::optional<engine::InterruptControllers> requested)
{
    using engine::InterruptControllers;
    bool split = engine.supports(engine::Capability::SplitIrqchip);
    if (requested == InterruptControllers::Split && !split)
        return make_error(fmt::format("--irqchip split: {} cannot leave the PIC, IOAPIC and PIT to kasou here (KVM lacks "
                                      "KVM_CAP_SPLIT_IRQCHIP); use --irqchip kernel",
            engine.name()));
    if (!requested && !split)
        spdlog::info("{} cannot leave the PIC, IOAPIC and PIT to kasou here (KVM lacks KVM_CAP_SPLIT_IRQCHIP): using its own "
                     "(--irqchip kernel)",
            engine.name());
    auto chosen = requested.value_or(split ? InterruptControllers::Split : InterruptControllers::InKernel);
    spdlog::debug("irqchip: {}", chosen == InterruptControllers::Split ? "split" : "kernel");
    return chosen;
}

ErrorOr<std::unique_ptr<SplitIrqchip>> SplitIrqchip::create(engine::Vm& vm, GsiRouting& routing)
{
    auto timer = TRY(sys::timerfd_create().map_error([](Error const& error) { return error.with_prefix("PIT timer"); }));
    auto stop = TRY(EventFd::create());
    std::unique_ptr<SplitIrqchip> chip(new SplitIrqchip(vm, routing, std::move(timer), std::move(stop)));
    // The timer thread takes no signals: stop signals are read through a signalfd elsewhere.
    sigset_t all, previous;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &previous);
    chip->m_thread = std::thread([raw = chip.get()] { raw->timer_thread(); });
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return chip;
}

SplitIrqchip::SplitIrqchip(engine::Vm& vm, GsiRouting& routing, Fd timer, EventFd stop)
    : m_vm(vm)
    , m_routing(routing)
    , m_timer(std::move(timer))
    , m_stop(std::move(stop))
{
    m_pic = std::make_shared<emu::PicPair>([this](bool level) { intr_changed(level); });
    m_ioapic = std::make_shared<emu::Ioapic>(
        [this](u32 pin, emu::MsiMessage message) {
            if (auto sent = m_vm.signal_msi({ message.address, message.data }); !sent)
                spdlog::warn("IOAPIC pin {}: {}", pin, sent.error().to_string());
        },
        [this](u32 pin, std::optional<emu::MsiMessage> message) {
            std::optional<engine::MsiMessage> route;
            if (message)
                route = engine::MsiMessage { message->address, message->data };
            if (auto routed = m_routing.set_ioapic_route(pin, route); !routed)
                spdlog::warn("IOAPIC pin {}: {}", pin, routed.error().to_string());
        });
    m_pit = std::make_shared<emu::Pit8254>(
        monotonic_ns, [this](bool level) { set_irq(emu::Pit8254::IRQ, level); }, [this](std::optional<u64> deadline) { arm_timer(deadline); });
}

SplitIrqchip::~SplitIrqchip()
{
    (void)m_stop.signal();
    if (m_thread.joinable())
        m_thread.join();
}

ErrorOr<void> SplitIrqchip::attach(bus::IoBus& pio, bus::IoBus& mmio)
{
    using emu::PicPair;
    for (auto [base, label] : { std::pair { PicPair::MASTER_PORT, "PIC master" }, { PicPair::SLAVE_PORT, "PIC slave" }, { PicPair::ELCR_PORT, "PIC ELCR" } })
        TRY(pio.insert(emu::port_window(m_pic, base), base, PicPair::PORT_COUNT, label));
    TRY(pio.insert(emu::port_window(m_pit, emu::Pit8254::PORT), emu::Pit8254::PORT, emu::Pit8254::PORT_COUNT, "PIT"));
    TRY(pio.insert(emu::port_window(m_pit, emu::Pit8254::SYSTEM_CONTROL_PORT), emu::Pit8254::SYSTEM_CONTROL_PORT, 1, "PIT gate and speaker"));
    TRY(mmio.insert(m_ioapic, emu::Ioapic::BASE, emu::Ioapic::SIZE, "IOAPIC"));
    return {};
}

void SplitIrqchip::set_irq(u32 irq, bool level)
{
    m_pic->set_irq(irq, level);
    m_ioapic->set_irq(irq == emu::Pit8254::IRQ ? PIT_IOAPIC_PIN : irq, level);
}

void SplitIrqchip::eoi(u8 vector) { m_ioapic->eoi(vector); }

void SplitIrqchip::intr_changed(bool level)
{
    if (!level)
        return;
    // vCPU 0 may sit in run() (halted, or in the guest): make it come out and inject. A kick
    // that lands before its next run() still makes that run() return at once.
    std::lock_guard guard(m_wake_lock);
    if (m_boot_vcpu)
        m_boot_vcpu->kick(); // not running yet: its first before_boot_vcpu_run() sees the request
}

ErrorOr<void> SplitIrqchip::before_boot_vcpu_run(engine::Vcpu& vcpu)
{
    if (!m_boot_vcpu) {
        std::lock_guard guard(m_wake_lock);
        m_boot_vcpu = &vcpu;
    }
    if (m_pic->interrupt_pending() && vcpu.ready_for_interrupt_injection())
        TRY(vcpu.inject_external_interrupt(m_pic->acknowledge()));
    // The engine holds one ExtINT at a time: while the PIC has more, ask for an exit when the
    // guest can take the next.
    vcpu.request_interrupt_window(m_pic->interrupt_pending());
    return {};
}

void SplitIrqchip::boot_vcpu_ended()
{
    std::lock_guard guard(m_wake_lock);
    m_boot_vcpu = nullptr;
}

void SplitIrqchip::pause() { m_pit->pause(); }

void SplitIrqchip::resume() { m_pit->resume(); }

SplitIrqchip::State SplitIrqchip::state() { return State { m_pic->state(), m_ioapic->state(), m_pit->state() }; }

ErrorOr<void> SplitIrqchip::set_state(State const& state)
{
    // Each model checks its whole state before it changes anything; a throwaway PIT and PIC check
    // theirs before the IOAPIC (the one that reports routes) takes its own.
    TRY(emu::PicPair([](bool) {}).set_state(state.pic));
    TRY(emu::Pit8254([] { return u64 { 0 }; }, [](bool) {}, [](std::optional<u64>) {}).set_state(state.pit));
    TRY(m_ioapic->set_state(state.ioapic));
    TRY(m_pic->set_state(state.pic));
    TRY(m_pit->set_state(state.pit));
    return {};
}

void SplitIrqchip::arm_timer(std::optional<u64> deadline_ns)
{
    // However short the period the guest programs, the timer thread wakes at most once per
    // MIN_TIMER_PERIOD_NS; the PIT counts the edges it missed meanwhile (KVM's in-kernel PIT
    // clamps its period the same way).
    if (deadline_ns)
        deadline_ns = std::max(*deadline_ns, monotonic_ns() + MIN_TIMER_PERIOD_NS);
    if (auto armed = sys::timerfd_set_deadline(m_timer.get(), deadline_ns); !armed)
        spdlog::warn("PIT: {}", armed.error().to_string());
}

void SplitIrqchip::timer_thread()
{
    ::pthread_setname_np(::pthread_self(), "pit");
    for (;;) {
        pollfd fds[2] = { { m_timer.get(), POLLIN, 0 }, { m_stop.fd(), POLLIN, 0 } };
        if (!sys::poll(fds, 2, -1))
            return;
        if (fds[1].revents & POLLIN)
            return;
        if (fds[0].revents & POLLIN) {
            u64 expirations;
            (void)!::read(m_timer.get(), &expirations, sizeof expirations);
            m_pit->update();
        }
    }
}

} // namespace kasou::vmm
