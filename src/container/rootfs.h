#pragma once

// The container's file system, built by its init inside the new mount namespace: the rootfs made
// a mount point, config.json's mounts in order, device nodes, then pivot_root (or chroot with
// --no-pivot), masked and read-only paths and a read-only root (runtime-spec config.md "Root",
// "Mounts"; config-linux.md "Devices", "Masked Paths", "Readonly Paths", "Rootfs Mount
// Propagation").

#include <string>
#include <vector>

#include "base/error.h"
#include "container/config.h"

namespace kasou::container {

struct RootfsPlan {
    Config const* config { nullptr };
    std::string rootfs; // absolute host path
    std::vector<std::string> cgroup_directories; // the container's cgroup, one per hierarchy
    bool user_namespace { false }; // no mknod: devices are bind mounts of the host's nodes
};

// Before pivot_root: propagation, the rootfs as a mount point, mounts and devices.
ErrorOr<void> prepare_rootfs(RootfsPlan const& plan);
// pivot_root (or MS_MOVE + chroot), then masked and read-only paths and a read-only root.
ErrorOr<void> enter_rootfs(RootfsPlan const& plan, bool no_pivot);

// Joins path under root the way the container will see it: symbolic links are followed but
// never out of root ("/../.." stays at root). The result is a host path under root.
ErrorOr<std::string> resolve_in_root(std::string const& root, std::string const& path);

} // namespace kasou::container
