#pragma once

// System call wrappers: signals delivered as descriptors.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <signal.h>

#include "base/error.h"
#include "base/fd.h"

namespace kasou::sys {

// A signalfd for the signals in mask (which the caller has blocked).
ErrorOr<Fd> signalfd(sigset_t const& mask);
// Blocks SIGTERM and SIGINT in the calling thread (threads it starts later inherit the mask, so none
// is killed or interrupted by them) and returns a signalfd that becomes readable when either
// arrives: how a server learns to stop cleanly. Call it before starting any thread.
ErrorOr<Fd> termination_signalfd();

// sigaction(signal, SIG_IGN): the signal is discarded from now on (SIGPIPE before writing to a pipe
// whose reader may be gone).
ErrorOr<void> ignore_signal(int signal);

} // namespace kasou::sys
