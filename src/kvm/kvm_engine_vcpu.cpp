#include "kvm/kvm_engine_vcpu.h"

#include <csignal>
#include <mutex>

#include <fmt/format.h>

#include "base/try.h"
#include "kvm/exit_reason.h"
#include "kvm/state_conversion.h"

namespace kasou::kvm {

namespace {

constexpr u32 MAX_ACCESS_SIZE = 8;

void ignore_kick(int) { }

engine::exit::Failure failure(engine::exit::Failure::Kind kind, u64 code, std::string description)
{
    return { kind, code, std::move(description) };
}

} // namespace

using namespace arch::x86_64;
using Failure = engine::exit::Failure;

int KvmEngineVcpu::kick_signal() { return SIGRTMIN; }

void KvmEngineVcpu::install_kick_handler()
{
    static std::once_flag installed;
    std::call_once(installed, [] {
        struct sigaction kick {};
        kick.sa_handler = ignore_kick; // no SA_RESTART: KVM_RUN must return EINTR
        ::sigaction(kick_signal(), &kick, nullptr);
    });
}

ErrorOr<engine::VcpuExit> KvmEngineVcpu::run()
{
    m_running_thread.store(::pthread_self());
    auto entered = m_vcpu.run();
    m_running_thread.store(0);
    m_has_run = true;
    m_exit_incomplete = false;
    if (!TRY(entered))
        return engine::exit::Interrupted {};
    auto exit = decode_exit();
    m_exit_incomplete = std::holds_alternative<engine::exit::PortIo>(exit) || std::holds_alternative<engine::exit::Mmio>(exit);
    return exit;
}

ErrorOr<void> KvmEngineVcpu::complete_exit()
{
    if (!m_exit_incomplete)
        return {};
    m_vcpu.request_immediate_exit();
    TRY(m_vcpu.run());
    m_exit_incomplete = false;
    return {};
}

void KvmEngineVcpu::kick()
{
    m_vcpu.request_immediate_exit();
    if (pthread_t thread = m_running_thread.load())
        ::pthread_kill(thread, kick_signal());
}

engine::VcpuExit KvmEngineVcpu::decode_exit()
{
    kvm_run* run = m_vcpu.run_state();
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        auto const& io = run->io;
        u64 bytes = u64 { io.size } * io.count;
        u64 run_size = m_vcpu.run_size();
        if (io.size == 0 || io.size > MAX_ACCESS_SIZE || io.data_offset > run_size || bytes > run_size - io.data_offset)
            return failure(Failure::Kind::MalformedExit, KVM_EXIT_IO,
                fmt::format("malformed port I/O exit (port {:#x}, size {}, count {})", io.port, io.size, io.count));
        return engine::exit::PortIo { io.port, io.size, io.count,
            io.direction == KVM_EXIT_IO_OUT ? engine::AccessDirection::Write : engine::AccessDirection::Read,
            std::span(reinterpret_cast<u8*>(run) + io.data_offset, bytes) };
    }
    case KVM_EXIT_MMIO: {
        auto& mmio = run->mmio;
        if (mmio.len == 0 || mmio.len > sizeof(mmio.data))
            return failure(Failure::Kind::MalformedExit, KVM_EXIT_MMIO,
                fmt::format("malformed MMIO exit (address {:#x}, length {})", mmio.phys_addr, mmio.len));
        return engine::exit::Mmio { mmio.phys_addr, mmio.is_write ? engine::AccessDirection::Write : engine::AccessDirection::Read,
            std::span(mmio.data, mmio.len) };
    }
    case KVM_EXIT_INTR:
        return engine::exit::Interrupted {};
    case KVM_EXIT_HLT:
        return engine::exit::Halt {};
    case KVM_EXIT_SHUTDOWN:
        return engine::exit::Shutdown {};
    case KVM_EXIT_IOAPIC_EOI:
        return engine::exit::IoapicEoi { run->eoi.vector };
    case KVM_EXIT_IRQ_WINDOW_OPEN:
        return engine::exit::InterruptWindowOpen {};
    case KVM_EXIT_SYSTEM_EVENT:
        switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
            return engine::exit::SystemEvent { engine::exit::SystemEvent::Kind::PowerOff };
        case KVM_SYSTEM_EVENT_RESET:
            return engine::exit::SystemEvent { engine::exit::SystemEvent::Kind::Reset };
        case KVM_SYSTEM_EVENT_CRASH:
            return engine::exit::SystemEvent { engine::exit::SystemEvent::Kind::Crash };
        default:
            return failure(Failure::Kind::UnknownSystemEvent, run->system_event.type,
                fmt::format("unknown system event {}", run->system_event.type));
        }
    case KVM_EXIT_INTERNAL_ERROR: {
        auto const& internal = run->internal;
        if (internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
            return failure(Failure::Kind::EmulationFailure, internal.suberror,
                "KVM could not emulate an instruction (KVM_EXIT_INTERNAL_ERROR, emulation failure)");
        return failure(Failure::Kind::InternalError, internal.suberror, fmt::format("KVM internal error, suberror {}", internal.suberror));
    }
    case KVM_EXIT_FAIL_ENTRY: {
        u64 reason = run->fail_entry.hardware_entry_failure_reason;
        return failure(Failure::Kind::EntryFailure, reason,
            fmt::format("KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason {:#x})", reason));
    }
    default:
        return failure(Failure::Kind::UnknownExit, run->exit_reason, fmt::format("unexpected exit {}", exit_reason_name(run->exit_reason)));
    }
}

ErrorOr<VcpuState> KvmEngineVcpu::state()
{
    TRY(complete_exit());
    VcpuState state;
    state.cpuid = to_neutral(TRY(m_vcpu.cpuid()));
    state.registers = to_neutral(TRY(m_vcpu.regs()));
    state.system = to_neutral(TRY(m_vcpu.sregs()));
    state.fpu = to_neutral(TRY(m_vcpu.fpu()));
    state.xsave = TRY(m_vcpu.xsave());
    state.xcrs = to_neutral(TRY(m_vcpu.xcrs()));
    for (auto [index, value] : TRY(m_vcpu.readable_msrs(m_msr_indices)))
        state.msrs.push_back({ index, value });
    state.debug = to_neutral(TRY(m_vcpu.debug_registers()));
    state.lapic = to_neutral(TRY(m_vcpu.lapic()));
    state.events = to_neutral(TRY(m_vcpu.events()));
    state.mp_state = TRY(to_neutral(TRY(m_vcpu.mp_state())));
    return state;
}

ErrorOr<void> KvmEngineVcpu::set_state(VcpuState const& state)
{
    // QEMU's order: the system registers (EFER) before the MSRs, the multiprocessing state before
    // the local APIC, pending events after both.
    TRY(complete_exit());
    // KVM refuses a CPUID table other than the current one once the vCPU has run.
    if (!m_has_run)
        TRY(set_cpuid(state.cpuid));
    TRY(m_vcpu.set_regs(to_kvm(state.registers)));
    TRY(m_vcpu.set_fpu(to_kvm(state.fpu)));
    TRY(m_vcpu.set_xsave(state.xsave));
    TRY(set_xcrs(state.xcrs));
    TRY(m_vcpu.set_sregs(to_kvm(state.system)));
    std::vector<std::pair<u32, u64>> msrs;
    for (auto const& msr : state.msrs)
        msrs.emplace_back(msr.index, msr.value);
    TRY(m_vcpu.set_msrs(msrs));
    TRY(m_vcpu.set_mp_state(to_kvm(state.mp_state)));
    TRY(m_vcpu.set_lapic(to_kvm(state.lapic)));
    TRY(m_vcpu.set_events(to_kvm(state.events)));
    TRY(m_vcpu.set_debug_registers(to_kvm(state.debug)));
    return {};
}

ErrorOr<GeneralRegisters> KvmEngineVcpu::registers() const { return to_neutral(TRY(m_vcpu.regs())); }
ErrorOr<void> KvmEngineVcpu::set_registers(GeneralRegisters const& value) { return m_vcpu.set_regs(to_kvm(value)); }
ErrorOr<SystemRegisters> KvmEngineVcpu::system_registers() const { return to_neutral(TRY(m_vcpu.sregs())); }
ErrorOr<void> KvmEngineVcpu::set_system_registers(SystemRegisters const& value) { return m_vcpu.set_sregs(to_kvm(value)); }
ErrorOr<void> KvmEngineVcpu::set_cpuid(CpuidTable const& table) { return m_vcpu.set_cpuid(to_kvm(table)); }
ErrorOr<void> KvmEngineVcpu::set_xcrs(std::vector<Xcr> const& xcrs) { return m_vcpu.set_xcrs(TRY(to_kvm(xcrs))); }
ErrorOr<LapicRegisters> KvmEngineVcpu::lapic() const { return to_neutral(TRY(m_vcpu.lapic())); }
ErrorOr<void> KvmEngineVcpu::set_lapic(LapicRegisters const& value) { return m_vcpu.set_lapic(to_kvm(value)); }
ErrorOr<u64> KvmEngineVcpu::translate(u64 linear) const { return m_vcpu.translate(linear); }

ErrorOr<void> KvmEngineVcpu::inject_external_interrupt(u8 vector) { return m_vcpu.interrupt(vector); }

void KvmEngineVcpu::request_interrupt_window(bool wanted) { m_vcpu.run_state()->request_interrupt_window = wanted ? 1 : 0; }

bool KvmEngineVcpu::ready_for_interrupt_injection() const { return m_vcpu.run_state()->ready_for_interrupt_injection != 0; }

} // namespace kasou::kvm
