// The loop each vCPU thread runs: the engine's run(), then dispatch of the exit to a bus or a stop
// reason.

#include <algorithm>
#include <pthread.h>
#include <sched.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/overloaded.h"
#include "vmm/machine.h"
#include "vmm/vcpu_diagnostics.h"

namespace kasou::vmm {

namespace {

// A completed run that needs no stop: nullopt. Otherwise why to stop.
using ExitOutcome = std::optional<StopReason>;

StopReason vcpu_failure(engine::Vcpu const& vcpu, memory::GuestMemory const& memory, std::string const& what)
{
    return StopReason::make(StopKind::VcpuFailure,
        fmt::format("vCPU {}: {}; {}", vcpu.index(), what, describe_vcpu_position(vcpu, memory)));
}

} // namespace

void Machine::vcpu_thread(u32 index)
{
    auto& vcpu = *m_vcpus[index];
    ::pthread_setname_np(::pthread_self(), fmt::format("vcpu{}", index).c_str());
    if (m_placement) {
        if (auto pinned = sched::HostCores::pin_current_thread(m_placement->cpus[index]); !pinned)
            spdlog::warn("vCPU {}: cannot pin to host CPU {}: {}", index, m_placement->cpus[index], pinned.error().to_string());
    }

    auto handle_exit = Overloaded {
        [&](engine::exit::PortIo const& io) -> ExitOutcome {
            for (u32 i = 0; i < io.count; ++i) {
                auto item = io.data.subspan(u64 { i } * io.size, io.size);
                if (io.direction == engine::AccessDirection::Write) {
                    if (!m_pio_bus.write(io.port, item))
                        warn_unhandled("port", io.port, io.size, true);
                } else if (!m_pio_bus.read(io.port, item)) {
                    std::fill(item.begin(), item.end(), 0xFF);
                    warn_unhandled("port", io.port, io.size, false);
                }
            }
            return std::nullopt;
        },
        [&](engine::exit::Mmio const& mmio) -> ExitOutcome {
            u32 size = static_cast<u32>(mmio.data.size());
            if (mmio.direction == engine::AccessDirection::Write) {
                if (!m_mmio_bus.write(mmio.address, mmio.data))
                    warn_unhandled("guest-physical address", mmio.address, size, true);
            } else if (!m_mmio_bus.read(mmio.address, mmio.data)) {
                std::fill(mmio.data.begin(), mmio.data.end(), 0xFF);
                warn_unhandled("guest-physical address", mmio.address, size, false);
            }
            return std::nullopt;
        },
        [&](engine::exit::Interrupted const&) -> ExitOutcome { return std::nullopt; },
        [&](engine::exit::Halt const&) -> ExitOutcome {
            return StopReason::make(StopKind::Halted, fmt::format("vCPU {} halted; {}", index, describe_vcpu_position(vcpu, m_memory)));
        },
        [&](engine::exit::Shutdown const&) -> ExitOutcome {
            return StopReason::make(StopKind::TripleFault,
                fmt::format("vCPU {} shut down (triple fault); {}", index, describe_vcpu_position(vcpu, m_memory)));
        },
        [&](engine::exit::SystemEvent const& event) -> ExitOutcome {
            switch (event.kind) {
            case engine::exit::SystemEvent::Kind::PowerOff:
                return StopReason::make(StopKind::PoweredOff, "guest powered off");
            case engine::exit::SystemEvent::Kind::Reset:
                return StopReason::make(StopKind::Reboot, "guest asked for a reset");
            case engine::exit::SystemEvent::Kind::Crash:
                return StopReason::make(StopKind::GuestCrash, fmt::format("guest reported a crash on vCPU {}", index));
            }
            return std::nullopt;
        },
        [&](engine::exit::Failure const& failure) -> ExitOutcome { return vcpu_failure(vcpu, m_memory, failure.description); },
        // Split irqchip only: the engine reports neither with its own interrupt controllers.
        [&](engine::exit::IoapicEoi const& eoi) -> ExitOutcome {
            if (m_split_irqchip)
                m_split_irqchip->eoi(eoi.vector);
            return std::nullopt;
        },
        [&](engine::exit::InterruptWindowOpen const&) -> ExitOutcome { return std::nullopt; }, // the next run injects
    };

    SplitIrqchip* pic_target = index == 0 ? m_split_irqchip.get() : nullptr; // the PICs' ExtINT goes to vCPU 0
    while (!m_stopping.load(std::memory_order_acquire)) {
        if (m_pause_requested.load(std::memory_order_acquire)) {
            park_vcpu();
            continue;
        }
        if (pic_target) {
            if (auto prepared = pic_target->before_boot_vcpu_run(vcpu); !prepared) {
                request_stop(vcpu_failure(vcpu, m_memory, prepared.error().to_string()));
                break;
            }
        }
        auto exit = vcpu.run();
        if (!exit) {
            request_stop(vcpu_failure(vcpu, m_memory, exit.error().to_string()));
            break;
        }
        if (std::holds_alternative<engine::exit::Interrupted>(*exit)) {
            sched_yield(); // interrupted by a kick or asked to retry: look at the flags again
            continue;
        }
        if (auto outcome = std::visit(handle_exit, *exit)) {
            request_stop(std::move(*outcome));
            break;
        }
    }
    if (pic_target)
        pic_target->boot_vcpu_ended();
    {
        std::lock_guard lock(m_state_lock);
        --m_running_vcpus;
    }
    m_state_changed.notify_all();
}

} // namespace kasou::vmm
