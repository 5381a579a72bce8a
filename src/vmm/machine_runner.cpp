#include "vmm/machine_runner.h"

#include <csignal>
#include <pthread.h>

#include "base/log.h"
#include "base/try.h"
#include "vmm/machine.h"

namespace kasou::vmm {

namespace {

// Blocks SIGINT and SIGTERM on the calling thread for its lifetime, restoring the previous mask.
class StopSignalsBlocked {
public:
    StopSignalsBlocked()
    {
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        ::pthread_sigmask(SIG_BLOCK, &stop_signals, &m_previous);
    }
    ~StopSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &m_previous, nullptr); }
    StopSignalsBlocked(StopSignalsBlocked const&) = delete;
    StopSignalsBlocked& operator=(StopSignalsBlocked const&) = delete;

private:
    sigset_t m_previous;
};

} // namespace

ErrorOr<StopReason> run_machines(MachineConfig const& config, RebootPolicy policy)
{
    StopSignalsBlocked blocked;
    for (;;) {
        auto machine = TRY(Machine::create(config));
        auto reason = machine->run();
        if (reason.kind != StopKind::Reboot || policy != RebootPolicy::Restart)
            return reason;
        spdlog::info("{}; restarting the guest (--on-reboot=restart)", reason.message);
    }
}

} // namespace kasou::vmm
