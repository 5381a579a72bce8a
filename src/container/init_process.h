#pragma once

// The container's init between clone3 and execve: it joins the namespaces named by path, builds
// the root file system, takes on the process attributes, reports ready to `create`, and waits on
// the exec FIFO until `start` opens it; then it runs the container's program in its own place.

#include <string>

#include "container/config.h"
#include "container/rootfs.h"

namespace kasou::container {

struct InitPlan {
    Config const* config { nullptr };
    RootfsPlan rootfs;
    int sync_fd { -1 }; // the init's end of the socket pair shared with `create`
    int state_dir_fd { -1 }; // O_PATH of ROOT/ID: exec.fifo is opened through it after pivot_root
    int console_fd { -1 }; // connected --console-socket, or -1
    bool no_pivot { false };
    bool new_user_namespace { false };
    std::string session_keyring; // empty: keep the caller's (--no-new-keyring)
};

// Never returns: on success the process becomes the container's program; on an error the message
// goes to `create` over the sync socket and the process exits.
[[noreturn]] void run_init(InitPlan const& plan);

} // namespace kasou::container
