// The loop each vCPU thread runs: KVM_RUN, then dispatch of the exit to a bus or a stop reason.

#include <algorithm>
#include <pthread.h>
#include <sched.h>

#include <fmt/format.h>

#include "base/log.h"
#include "kvm/exit_reason.h"
#include "vmm/machine.h"
#include "vmm/vcpu_diagnostics.h"

namespace kasou::vmm {

namespace {

constexpr size_t MAX_ACCESS_SIZE = 8;

// A completed run that needs no stop: nullopt. Otherwise why to stop.
using ExitOutcome = std::optional<StopReason>;

StopReason vcpu_failure(kvm::Vcpu const& vcpu, memory::GuestMemory const& memory, std::string const& what)
{
    return StopReason::make(StopKind::VcpuFailure,
        fmt::format("vCPU {}: {}; {}", vcpu.index(), what, describe_vcpu_position(vcpu, memory)));
}

} // namespace

void Machine::vcpu_thread(u32 index)
{
    auto& vcpu = m_vcpus[index];
    kvm_run* run = vcpu.run_state();
    ::pthread_setname_np(::pthread_self(), fmt::format("vcpu{}", index).c_str());
    if (m_placement) {
        if (auto pinned = sched::HostCores::pin_current_thread(m_placement->cpus[index]); !pinned)
            spdlog::warn("vCPU {}: cannot pin to host CPU {}: {}", index, m_placement->cpus[index], pinned.error().to_string());
    }
    u64 const run_size = m_system.vcpu_mmap_size();

    auto handle_exit = [&]() -> ExitOutcome {
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            auto& io = run->io;
            u64 bytes = u64 { io.size } * io.count;
            if (io.size == 0 || io.size > MAX_ACCESS_SIZE || io.data_offset > run_size || bytes > run_size - io.data_offset)
                return vcpu_failure(vcpu, m_memory, fmt::format("malformed port I/O exit (port {:#x}, size {}, count {})", io.port, io.size, io.count));
            u8* data = reinterpret_cast<u8*>(run) + io.data_offset;
            for (u32 i = 0; i < io.count; ++i) {
                std::span<u8> item(data + u64 { i } * io.size, io.size);
                if (io.direction == KVM_EXIT_IO_OUT) {
                    if (!m_pio_bus.write(io.port, item))
                        warn_unhandled("port", io.port, io.size, true);
                } else if (!m_pio_bus.read(io.port, item)) {
                    std::fill(item.begin(), item.end(), 0xFF);
                    warn_unhandled("port", io.port, io.size, false);
                }
            }
            return std::nullopt;
        }
        case KVM_EXIT_MMIO: {
            auto& mmio = run->mmio;
            if (mmio.len == 0 || mmio.len > sizeof(mmio.data))
                return vcpu_failure(vcpu, m_memory, fmt::format("malformed MMIO exit (address {:#x}, length {})", mmio.phys_addr, mmio.len));
            std::span<u8> data(mmio.data, mmio.len);
            if (mmio.is_write) {
                if (!m_mmio_bus.write(mmio.phys_addr, data))
                    warn_unhandled("guest-physical address", mmio.phys_addr, mmio.len, true);
            } else if (!m_mmio_bus.read(mmio.phys_addr, data)) {
                std::fill(data.begin(), data.end(), 0xFF);
                warn_unhandled("guest-physical address", mmio.phys_addr, mmio.len, false);
            }
            return std::nullopt;
        }
        case KVM_EXIT_INTR:
        case KVM_EXIT_IRQ_WINDOW_OPEN: // the next before_boot_vcpu_run() injects
            return std::nullopt;
        case KVM_EXIT_IOAPIC_EOI:
            if (m_split_irqchip)
                m_split_irqchip->eoi(run->eoi.vector);
            return std::nullopt;
        case KVM_EXIT_HLT:
            return StopReason::make(StopKind::Halted, fmt::format("vCPU {} halted; {}", index, describe_vcpu_position(vcpu, m_memory)));
        case KVM_EXIT_SHUTDOWN:
            return StopReason::make(StopKind::TripleFault,
                fmt::format("vCPU {} shut down (triple fault); {}", index, describe_vcpu_position(vcpu, m_memory)));
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run->system_event.type) {
            case KVM_SYSTEM_EVENT_SHUTDOWN:
                return StopReason::make(StopKind::PoweredOff, "guest powered off");
            case KVM_SYSTEM_EVENT_RESET:
                return StopReason::make(StopKind::Reboot, "guest asked for a reset");
            case KVM_SYSTEM_EVENT_CRASH:
                return StopReason::make(StopKind::GuestCrash, fmt::format("guest reported a crash on vCPU {}", index));
            default:
                return vcpu_failure(vcpu, m_memory, fmt::format("unknown system event {}", run->system_event.type));
            }
        case KVM_EXIT_INTERNAL_ERROR: {
            auto const& internal = run->internal;
            std::string what = internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                ? "KVM could not emulate an instruction (KVM_EXIT_INTERNAL_ERROR, emulation failure)"
                : fmt::format("KVM internal error, suberror {}", internal.suberror);
            return vcpu_failure(vcpu, m_memory, what);
        }
        case KVM_EXIT_FAIL_ENTRY:
            return vcpu_failure(vcpu, m_memory,
                fmt::format("KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason {:#x})", run->fail_entry.hardware_entry_failure_reason));
        default:
            return vcpu_failure(vcpu, m_memory, fmt::format("unexpected exit {}", kvm::exit_reason_name(run->exit_reason)));
        }
    };

    SplitIrqchip* pic_target = index == 0 ? m_split_irqchip.get() : nullptr; // the PICs' ExtINT goes to vCPU 0
    while (!m_stopping.load(std::memory_order_acquire)) {
        if (pic_target) {
            if (auto prepared = pic_target->before_boot_vcpu_run(vcpu); !prepared) {
                request_stop(vcpu_failure(vcpu, m_memory, prepared.error().to_string()));
                break;
            }
        }
        auto ran = vcpu.run();
        if (!ran) {
            request_stop(vcpu_failure(vcpu, m_memory, ran.error().to_string()));
            break;
        }
        if (!*ran) {
            sched_yield(); // interrupted by a kick or asked to retry: look at the stop flag again
            continue;
        }
        if (auto outcome = handle_exit()) {
            request_stop(std::move(*outcome));
            break;
        }
    }
    if (pic_target)
        pic_target->boot_vcpu_ended();
    m_running_vcpus.fetch_sub(1);
}

} // namespace kasou::vmm
