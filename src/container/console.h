#pragma once

// process.terminal: the container's program gets a pseudo-terminal from the container's own devpts;
// its master goes to whoever listens on --console-socket (containerd's shim), sent with
// SCM_RIGHTS, the way runc sends it.

#include "base/error.h"
#include "container/config.h"

namespace kasou::container {

// Opens /dev/ptmx (in the container's root), sends the master over console_socket, makes the slave
// the controlling terminal of a new session and standard input, output and error.
ErrorOr<void> attach_console(int console_socket, Process const& process);

} // namespace kasou::container
