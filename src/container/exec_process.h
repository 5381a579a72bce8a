#pragma once

// `kasou oci exec`: one more process in a running container, in all of its namespaces and its
// cgroup, with the attributes of the given `process` document and the container's seccomp profile.

#include <string>

#include "base/error.h"
#include "container/config.h"
#include "container/state_store.h"

namespace kasou::container {

struct ExecRequest {
    Config const* config { nullptr }; // the container's configuration, as saved at create
    ContainerState const* state { nullptr };
    Process process;
    std::string console_socket;
    std::string pid_file;
    bool detach { false };
};

// Starts the process; with `detach` returns 0 once it runs (it goes to the nearest child
// subreaper when this process exits), otherwise waits and returns its exit status.
ErrorOr<int> exec_in_container(ExecRequest const& request);

} // namespace kasou::container
