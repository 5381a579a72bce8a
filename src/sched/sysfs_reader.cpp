#include "sched/sysfs_reader.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::sched {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> read_optional(std::string const& path)
{
    auto text = sys::read_file(path);
    if (!text)
        return std::nullopt;
    return std::move(*text);
}

std::optional<long> read_int(std::string const& path)
{
    auto text = read_optional(path);
    if (!text)
        return std::nullopt;
    long value = 0;
    char const* begin = text->data();
    char const* end = begin + text->size();
    while (begin < end && (*begin == ' ' || *begin == '\n'))
        ++begin;
    auto [ptr, error] = std::from_chars(begin, end, value);
    if (error != std::errc() || ptr == begin)
        return std::nullopt;
    return value;
}

// The first of `names` (under dir) that exists; files named *map, *siblings and *_cpus hold the
// mask form, the others (*list, online, isolated) the list form. A malformed file is an error: it is not a missing one.
ErrorOr<std::optional<CpuSet>> read_cpu_set(std::string const& dir, std::initializer_list<char const*> names)
{
    for (std::string_view name : names) {
        std::string path = fmt::format("{}/{}", dir, name);
        auto text = read_optional(path);
        if (!text)
            continue;
        bool is_mask = name.ends_with("map") || name.ends_with("siblings") || name.ends_with("_cpus");
        auto set = is_mask ? CpuSet::parse_mask(*text) : CpuSet::parse_list(*text);
        if (!set)
            return tl::unexpected(set.error().with_prefix(path));
        return std::optional<CpuSet>(std::move(*set));
    }
    return std::optional<CpuSet>();
}

// Numbers N of the entries "<prefix>N" in dir, ascending.
std::vector<u32> numbered_entries(std::string const& dir, std::string_view prefix)
{
    std::vector<u32> numbers;
    std::error_code error;
    for (auto const& entry : fs::directory_iterator(dir, error)) {
        std::string name = entry.path().filename().string();
        if (!name.starts_with(prefix) || name.size() == prefix.size())
            continue;
        u32 number = 0;
        auto [ptr, parse_error] = std::from_chars(name.data() + prefix.size(), name.data() + name.size(), number);
        if (parse_error == std::errc() && ptr == name.data() + name.size())
            numbers.push_back(number);
    }
    std::sort(numbers.begin(), numbers.end());
    return numbers;
}

struct CacheFacts {
    CpuSet cpus;
    u32 level { 0 };
};

// The CPU's highest-level data or unified cache, if it exports any.
ErrorOr<std::optional<CacheFacts>> read_last_level_cache(std::string const& cpu_dir, u32 id, CpuSet const& siblings)
{
    std::optional<CacheFacts> best;
    std::string cache_dir = cpu_dir + "/cache";
    for (u32 index : numbered_entries(cache_dir, "index")) {
        std::string dir = fmt::format("{}/index{}", cache_dir, index);
        auto level = read_int(dir + "/level");
        if (!level || *level <= 0)
            continue;
        auto type = read_optional(dir + "/type");
        if (type && type->starts_with("Instruction"))
            continue;
        auto shared = TRY(read_cpu_set(dir, { "shared_cpu_list", "shared_cpu_map" }));
        CpuSet cpus = shared && !shared->empty() ? *shared : siblings;
        cpus.add(id);
        if (!best || u32(*level) > best->level)
            best = CacheFacts { cpus, u32(*level) };
        else if (u32(*level) == best->level)
            best->cpus = best->cpus | cpus;
    }
    return best;
}

} // namespace

ErrorOr<std::string> locate_sys_dir(std::string const& path)
{
    std::error_code error;
    if (!fs::is_directory(path, error))
        return make_error(fmt::format("{}: not a directory (want a sysfs tree: a sys directory or one that holds it)", path));
    auto holds_cpu_dir = [&](fs::path const& sys) { return fs::is_directory(sys / "devices/system/cpu", error); };
    fs::path root(path);
    if (holds_cpu_dir(root))
        return root.string();
    if (holds_cpu_dir(root / "sys"))
        return (root / "sys").string();
    std::vector<fs::path> subdirs;
    for (auto const& entry : fs::directory_iterator(root, error)) {
        if (entry.is_directory(error))
            subdirs.push_back(entry.path());
    }
    if (subdirs.size() == 1) {
        if (holds_cpu_dir(subdirs[0] / "sys"))
            return (subdirs[0] / "sys").string();
        if (holds_cpu_dir(subdirs[0]))
            return subdirs[0].string();
    }
    return make_error(fmt::format("{}: no devices/system/cpu below it, not a sysfs tree", path));
}

ErrorOr<Topology> read_topology(std::string const& sys_dir)
{
    std::string const cpu_root = sys_dir + "/devices/system/cpu";
    std::string const node_root = sys_dir + "/devices/system/node";
    auto present = numbered_entries(cpu_root, "cpu");
    if (present.empty())
        return make_error(fmt::format("{}: no cpuN directories", cpu_root));

    CpuSet present_set;
    for (u32 id : present)
        present_set.add(id);
    CpuSet online;
    auto listed = TRY(read_cpu_set(cpu_root, { "online" }));
    if (listed && !(*listed & present_set).empty()) {
        online = *listed & present_set;
    } else {
        for (u32 id : present) {
            if (read_int(fmt::format("{}/cpu{}/online", cpu_root, id)).value_or(1) != 0)
                online.add(id);
        }
    }
    CpuSet isolated = TRY(read_cpu_set(cpu_root, { "isolated" })).value_or(CpuSet());

    struct Raw {
        u32 id;
        i32 package_id;
        std::optional<long> core_id;
        std::optional<long> die_id;
        CpuSet package_cpus;
        CpuSet siblings;
    };
    std::vector<Raw> raws;
    std::map<u32, size_t> raw_of;
    for (u32 id : online.to_vector()) {
        std::string topo = fmt::format("{}/cpu{}/topology", cpu_root, id);
        Raw raw { id, i32(read_int(topo + "/physical_package_id").value_or(-1)), read_int(topo + "/core_id"),
            read_int(topo + "/die_id"), {}, {} };
        if (raw.package_id < -1)
            raw.package_id = -1;
        raw.package_cpus = TRY(read_cpu_set(topo, { "package_cpus_list", "core_siblings_list", "package_cpus", "core_siblings" }))
                               .value_or(CpuSet());
        raw.siblings = TRY(read_cpu_set(topo, { "core_cpus_list", "thread_siblings_list", "core_cpus", "thread_siblings" }))
                           .value_or(CpuSet());
        raw_of[id] = raws.size();
        raws.push_back(std::move(raw));
    }

    std::vector<CpuFacts> facts;
    for (auto const& raw : raws) {
        CpuFacts fact { raw.id, raw.package_id, raw.package_cpus, {}, {}, 0 };
        // SMT siblings that report another core_id are separate cores sharing a module.
        if (!raw.siblings.empty()) {
            for (u32 other : (raw.siblings & online).to_vector()) {
                auto const& peer = raws[raw_of.at(other)];
                if (!raw.core_id || !peer.core_id || *peer.core_id == *raw.core_id)
                    fact.core_cpus.add(other);
            }
        } else if (raw.core_id && raw.package_id >= 0) {
            for (auto const& peer : raws) {
                if (peer.package_id == raw.package_id && peer.die_id == raw.die_id && peer.core_id == raw.core_id)
                    fact.core_cpus.add(peer.id);
            }
        }
        fact.core_cpus.add(raw.id);
        auto cache = TRY(read_last_level_cache(fmt::format("{}/cpu{}", cpu_root, raw.id), raw.id, fact.core_cpus));
        if (cache) {
            fact.llc_cpus = cache->cpus;
            fact.llc_level = cache->level;
        }
        facts.push_back(std::move(fact));
    }

    std::vector<NodeFacts> nodes;
    auto node_ids = numbered_entries(node_root, "node");
    if (auto node_online = TRY(read_cpu_set(node_root, { "online" }))) {
        std::erase_if(node_ids, [&](u32 id) { return !node_online->contains(id); });
    }
    for (u32 id : node_ids) {
        std::string dir = fmt::format("{}/node{}", node_root, id);
        NodeFacts node { id, TRY(read_cpu_set(dir, { "cpulist", "cpumap" })).value_or(CpuSet()), {} };
        if (auto text = read_optional(dir + "/distance")) {
            std::istringstream stream(*text);
            u32 distance = 0;
            while (stream >> distance)
                node.distances.push_back(distance);
        }
        nodes.push_back(std::move(node));
    }

    auto topology = Topology::build(std::move(facts), std::move(nodes), present_set - online, isolated);
    if (!topology)
        return tl::unexpected(topology.error().with_prefix(sys_dir));
    return topology;
}

} // namespace kasou::sched
