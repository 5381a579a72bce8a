#include "shipped_topologies.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>

#include "base/try.h"
#include "sched/sysfs_source.h"

namespace kasou::sched::testing {

std::vector<std::string> shipped_names()
{
    // The archives live in the repository; a clone without them is broken, not a reason to skip.
    if (!std::filesystem::is_directory(KASOU_TOPOLOGY_DIR))
        throw std::runtime_error("captured topologies missing: " KASOU_TOPOLOGY_DIR);
    std::vector<std::string> names;
    for (auto const& entry : std::filesystem::directory_iterator(KASOU_TOPOLOGY_DIR)) {
        std::string name = entry.path().filename().string();
        if (name.ends_with(".tar.bz2"))
            names.push_back(name.substr(0, name.size() - 8));
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::string shipped_path(std::string const& name) { return std::string(KASOU_TOPOLOGY_DIR) + "/" + name + ".tar.bz2"; }

Topology const& shipped(std::string const& name)
{
    static std::map<std::string, std::unique_ptr<Topology>> cache;
    auto& slot = cache[name];
    if (!slot)
        slot = std::make_unique<Topology>(MUST(load_topology(shipped_path(name))));
    return *slot;
}

} // namespace kasou::sched::testing
