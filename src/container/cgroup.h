#pragma once

// A container's control group on any of the three layouts a host may have: cgroup v1 (one
// hierarchy per controller under /sys/fs/cgroup/<controller>), v2 (one unified hierarchy at
// /sys/fs/cgroup) and the mixed layout (v1 controllers, plus a v2 hierarchy without controllers
// at /sys/fs/cgroup/unified, where the container is placed too so its processes are tracked there).

#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "container/config.h"

namespace kasou::container {

enum class CgroupLayout { V1, V2, Mixed };

// The directories of one container's cgroup. Creating it applies the resources; destroy() removes
// the directories it created (not their parents, which other containers share). Knows nothing of
// the processes in it beyond what the kernel lists.
class Cgroup {
public:
    // Detects the host's layout from the file system types under `mount_root` (/sys/fs/cgroup).
    static ErrorOr<CgroupLayout> detect(std::string const& mount_root = "/sys/fs/cgroup");

    // Creates the cgroup at path (relative to each hierarchy's root, "/kasou/ID") and applies
    // resources; on an error nothing stays behind.
    static ErrorOr<Cgroup> create(std::string const& path, Resources const& resources);
    // The cgroup of an existing container (which may be gone already).
    static ErrorOr<Cgroup> existing(std::string const& path);

    ErrorOr<void> add_process(pid_t pid) const;
    // Writes the given resources; fields absent from `resources` stay as they are.
    ErrorOr<void> apply(Resources const& resources) const;
    ErrorOr<void> freeze(bool frozen) const;
    bool frozen() const;
    // Every process in the cgroup (the first hierarchy's cgroup.procs).
    std::vector<pid_t> processes() const;
    // Removes the directories, retrying while the kernel still counts exiting processes.
    ErrorOr<void> destroy() const;
    // Memory, CPU and pids usage in the shape of runc's `events --stats` data.
    nlohmann::json stats() const;

    CgroupLayout layout() const { return m_layout; }
    // The directory of a v1 controller ("memory") or, for v2, the one directory.
    std::string directory(std::string const& controller) const;
    // Every directory of this cgroup, one per hierarchy.
    std::vector<std::string> const& directories() const { return m_directories; }

private:
    Cgroup(CgroupLayout layout, std::string path);
    ErrorOr<void> make_directories() const;
    ErrorOr<void> apply_v1(Resources const& resources) const;
    ErrorOr<void> apply_v2(Resources const& resources) const;

    CgroupLayout m_layout;
    std::string m_path;
    std::vector<std::string> m_directories;
};

// The cgroup path for a container: linux.cgroupsPath if absolute, else under /kasou.
std::string cgroup_path_for(std::string const& cgroups_path, std::string const& id);

} // namespace kasou::container
