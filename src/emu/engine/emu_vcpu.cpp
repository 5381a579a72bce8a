#include "emu/engine/emu_vcpu.h"

#include <chrono>
#include <cstring>
#include <x86intrin.h>

#include <fmt/format.h>

#include "emu/engine/emu_vm.h"
#include "emu/engine/state_conversion.h"

namespace kasou::emu {

namespace {

// Instructions per slice: between slices run() looks at kicks, the LAPIC timer and interrupts.
constexpr u64 SLICE = 20'000;
constexpr u32 APIC_MSR_FIRST = 0x800;
constexpr u32 APIC_MSR_LAST = 0x8FF;
constexpr u64 APIC_BASE_ENABLE = 1u << 11;
constexpr u64 APIC_BASE_X2APIC = 1u << 10;

u64 now_ns()
{
    return static_cast<u64>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

} // namespace

EmuVcpu::EmuVcpu(EmuVm& vm, u32 index)
    : m_vm(vm)
    , m_index(index)
    , m_lapic(index)
    , m_cpu(vm.memory(), *this)
    , m_mp_state(index == 0 ? arch::x86_64::MpState::Runnable : arch::x86_64::MpState::Uninitialized)
{
    if (index == 0)
        m_cpu.state().apic_base |= 1u << 8; // the bootstrap processor
    else
        m_cpu.state().apic_base &= ~u64 { 1u << 8 };
}

EmuVcpu::~EmuVcpu()
{
    m_vm.vcpu_gone(this);
}

u64 EmuVcpu::tsc()
{
    return __rdtsc();
}

bool EmuVcpu::read_msr(u32 index, u64& value)
{
    if (index >= APIC_MSR_FIRST && index <= APIC_MSR_LAST) {
        if (!(m_cpu.state().apic_base & APIC_BASE_X2APIC))
            return false;
        return m_lapic.read_msr(index, value, now_ns());
    }
    return false;
}

bool EmuVcpu::write_msr(u32 index, u64 value)
{
    if (index == cpu::msr::APIC_BASE)
        return true; // kept by the CPU; the LAPIC reads it from there
    if (index >= APIC_MSR_FIRST && index <= APIC_MSR_LAST) {
        if (!(m_cpu.state().apic_base & APIC_BASE_X2APIC))
            return false;
        Lapic::WriteEffect effect;
        if (!m_lapic.write_msr(index, value, now_ns(), effect))
            return false;
        apply(effect);
        return true;
    }
    return false;
}

void EmuVcpu::apply(Lapic::WriteEffect const& effect)
{
    if (effect.level_eoi)
        m_pending_eoi = effect.level_eoi;
    if (effect.ipi)
        m_vm.send_ipi(m_index, *effect.ipi);
}

void EmuVcpu::wake()
{
    {
        std::lock_guard guard(m_wait_lock);
        m_work.store(true);
    }
    m_wake.notify_all();
}

void EmuVcpu::kick()
{
    m_kicked.store(true);
    wake();
}

void EmuVcpu::accept_interrupt(u8 vector, bool level)
{
    m_lapic.accept(vector, level);
    wake();
}

void EmuVcpu::init_signal()
{
    m_init.store(true);
    wake();
}

void EmuVcpu::startup_signal(u8 vector)
{
    m_sipi_vector.store(vector);
    wake();
}

bool EmuVcpu::wait_for_work()
{
    std::unique_lock lock(m_wait_lock);
    auto deadline = m_lapic.poll_timer(now_ns());
    if (m_kicked.load() || m_work.load()) {
        m_work.store(false);
        return !m_kicked.load();
    }
    if (deadline) {
        auto const wait = std::chrono::nanoseconds(*deadline > now_ns() ? *deadline - now_ns() : 0);
        m_wake.wait_for(lock, wait, [&] { return m_kicked.load() || m_work.load(); });
    } else {
        m_wake.wait(lock, [&] { return m_kicked.load() || m_work.load(); });
    }
    m_work.store(false);
    return !m_kicked.load();
}

ErrorOr<engine::VcpuExit> EmuVcpu::run()
{
    m_has_run = true;
    if (m_read_pending) {
        u64 value = 0;
        std::memcpy(&value, m_exit_data, m_read_size);
        m_cpu.complete_read(value);
        m_read_pending = false;
    }
    auto& state = m_cpu.state();
    for (;;) {
        if (m_kicked.exchange(false))
            return engine::exit::Interrupted {};
        if (m_pending_eoi) {
            u8 vector = *m_pending_eoi;
            m_pending_eoi.reset();
            return engine::exit::IoapicEoi { vector };
        }
        // INIT and SIPI (Intel SDM vol. 3A, 9.4.4): an AP waits for INIT, then starts in real
        // mode at the SIPI vector's page.
        if (m_init.exchange(false) && m_index != 0)
            m_mp_state = arch::x86_64::MpState::InitReceived;
        if (m_mp_state == arch::x86_64::MpState::InitReceived) {
            int vector = m_sipi_vector.exchange(-1);
            if (vector >= 0) {
                cpu::Segment& cs = state.segments[1];
                cs.selector = static_cast<u16>(vector << 8);
                cs.base = static_cast<u64>(vector) << 12;
                cs.limit = 0xFFFF;
                cs.db = cs.l = 0;
                state.rip = 0;
                state.cr0 = cpu::cr0::ET;
                state.efer = 0;
                state.halted = false;
                m_cpu.state_changed();
                m_mp_state = arch::x86_64::MpState::Runnable;
            }
        }
        if (m_mp_state != arch::x86_64::MpState::Runnable) {
            if (!wait_for_work())
                continue;
            continue;
        }

        m_lapic.poll_timer(now_ns());
        if (m_cpu.interrupts_deliverable()) {
            if (auto vector = m_lapic.acknowledge())
                m_cpu.deliver_external_interrupt(*vector);
        }
        if (state.halted) {
            if (m_window_wanted && m_cpu.interrupts_deliverable())
                return engine::exit::InterruptWindowOpen {};
            // Interrupts wake a halted CPU only when it can take them.
            if (!(m_cpu.interrupts_deliverable() && m_lapic.has_pending()))
                wait_for_work();
            if (m_cpu.interrupts_deliverable()) {
                if (auto vector = m_lapic.acknowledge())
                    m_cpu.deliver_external_interrupt(*vector);
            }
            if (state.halted)
                continue;
        }

        cpu::CpuExit exit = m_cpu.run(SLICE);
        switch (exit.kind) {
        case cpu::CpuExit::Kind::BudgetSpent:
        case cpu::CpuExit::Kind::Halt:
            continue;
        case cpu::CpuExit::Kind::Shutdown:
            return engine::exit::Shutdown {};
        case cpu::CpuExit::Kind::InterruptWindow:
            return engine::exit::InterruptWindowOpen {};
        case cpu::CpuExit::Kind::PortIo:
        case cpu::CpuExit::Kind::Mmio:
            break;
        }
        bool const pio = exit.kind == cpu::CpuExit::Kind::PortIo;
        u64 const apic_page = state.apic_base & ~u64 { 0xFFF };
        if (!pio && (state.apic_base & APIC_BASE_ENABLE) && !(state.apic_base & APIC_BASE_X2APIC) && exit.address - apic_page < 0x1000) {
            u32 const offset = static_cast<u32>(exit.address - apic_page);
            if (exit.write)
                apply(m_lapic.write(offset, static_cast<u32>(exit.data), now_ns()));
            else
                m_cpu.complete_read(m_lapic.read(offset, now_ns()));
            continue;
        }
        if (exit.write && m_vm.ioeventfd_write(exit.address, exit.size, pio))
            continue;
        std::memcpy(m_exit_data, &exit.data, sizeof(m_exit_data));
        auto const direction = exit.write ? engine::AccessDirection::Write : engine::AccessDirection::Read;
        if (!exit.write) {
            m_read_pending = true;
            m_read_size = exit.size;
        }
        std::span<u8> data(m_exit_data, exit.size);
        if (pio)
            return engine::exit::PortIo { static_cast<u16>(exit.address), exit.size, 1, direction, data };
        return engine::exit::Mmio { exit.address, direction, data };
    }
}

ErrorOr<arch::x86_64::VcpuState> EmuVcpu::state()
{
    if (m_read_pending)
        return make_error(ErrorKind::Busy, "the vCPU is inside a port or MMIO read; run it once more first");
    auto result = to_vcpu_state(m_cpu.state());
    result.lapic = m_lapic.registers();
    result.mp_state = m_mp_state;
    return result;
}

ErrorOr<void> EmuVcpu::set_state(arch::x86_64::VcpuState const& state)
{
    if (!m_has_run)
        m_cpu.set_cpuid(state.cpuid);
    from_vcpu_state(state, m_cpu.state());
    m_lapic.set_registers(state.lapic, now_ns());
    m_mp_state = state.mp_state;
    m_cpu.state_changed();
    return {};
}

ErrorOr<arch::x86_64::GeneralRegisters> EmuVcpu::registers() const
{
    return to_general_registers(m_cpu.state());
}

ErrorOr<void> EmuVcpu::set_registers(arch::x86_64::GeneralRegisters const& registers)
{
    from_general_registers(registers, m_cpu.state());
    return {};
}

ErrorOr<arch::x86_64::SystemRegisters> EmuVcpu::system_registers() const
{
    return to_system_registers(m_cpu.state());
}

ErrorOr<void> EmuVcpu::set_system_registers(arch::x86_64::SystemRegisters const& registers)
{
    from_system_registers(registers, m_cpu.state());
    m_cpu.state_changed();
    return {};
}

ErrorOr<void> EmuVcpu::set_cpuid(arch::x86_64::CpuidTable const& table)
{
    m_cpu.set_cpuid(table);
    return {};
}

ErrorOr<void> EmuVcpu::set_xcrs(std::vector<arch::x86_64::Xcr> const& xcrs)
{
    if (!xcrs.empty())
        return make_error(ErrorKind::Unsupported, "the software CPU has no XSAVE state");
    return {};
}

ErrorOr<arch::x86_64::LapicRegisters> EmuVcpu::lapic() const
{
    return m_lapic.registers();
}

ErrorOr<void> EmuVcpu::set_lapic(arch::x86_64::LapicRegisters const& registers)
{
    m_lapic.set_registers(registers, now_ns());
    return {};
}

ErrorOr<u64> EmuVcpu::translate(u64 linear) const
{
    auto physical = m_cpu.translate(linear);
    if (!physical)
        return make_error(fmt::format("linear address {:#x} is not mapped", linear));
    return *physical;
}

ErrorOr<void> EmuVcpu::inject_external_interrupt(u8 vector)
{
    if (!m_cpu.interrupts_deliverable())
        return make_error(ErrorKind::Busy, "the guest cannot take an interrupt now");
    m_cpu.deliver_external_interrupt(vector);
    return {};
}

void EmuVcpu::request_interrupt_window(bool wanted)
{
    m_window_wanted = wanted;
    m_cpu.request_interrupt_window(wanted);
}

bool EmuVcpu::ready_for_interrupt_injection() const
{
    return m_cpu.interrupts_deliverable();
}

} // namespace kasou::emu
