#include "sched/cpu_mover.h"

#include <filesystem>
#include <fcntl.h>

#include <fmt/format.h>

#include "base/sys_affinity.h"
#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::sched {

namespace {

// A bitmap in the kernel's cpu_set_t layout, sized for the highest CPU.
std::vector<unsigned long> to_bitmap(CpuSet const& cpus, size_t minimum_bits)
{
    constexpr size_t BITS = 8 * sizeof(unsigned long);
    size_t bits = minimum_bits;
    for (u32 cpu : cpus.to_vector())
        bits = std::max<size_t>(bits, cpu + 1);
    std::vector<unsigned long> words((bits + BITS - 1) / BITS, 0);
    for (u32 cpu : cpus.to_vector())
        words[cpu / BITS] |= 1ul << (cpu % BITS);
    return words;
}

ErrorOr<void> write_text(std::string const& path, std::string const& text)
{
    auto fd = TRY(sys::open(path, O_WRONLY | O_TRUNC));
    auto written = sys::write_exact(fd.get(), text.data(), text.size());
    if (!written)
        return tl::unexpected(written.error().with_prefix(fmt::format("write '{}' to {}", text, path)));
    return {};
}

} // namespace

ErrorOr<void> set_thread_affinity(pid_t tid, CpuSet const& cpus)
{
    if (cpus.empty())
        return make_error("refusing an empty CPU affinity");
    auto words = to_bitmap(cpus, 0);
    return sys::sched_setaffinity(tid, words.size() * sizeof(unsigned long), words.data());
}

ErrorOr<CpuSet> thread_affinity(pid_t tid)
{
    constexpr size_t BITS = 8 * sizeof(unsigned long);
    // Grow until the kernel's cpumask fits (EINVAL means the buffer is too small).
    for (size_t bits = 1024;; bits *= 2) {
        std::vector<unsigned long> words(bits / BITS, 0);
        auto result = sys::sched_getaffinity(tid, words.size() * sizeof(unsigned long), words.data());
        if (!result) {
            if (result.error().code() == EINVAL && bits < (1u << 20))
                continue;
            return tl::unexpected(result.error());
        }
        CpuSet cpus;
        for (size_t i = 0; i < bits; ++i) {
            if (words[i / BITS] >> (i % BITS) & 1)
                cpus.add(u32(i));
        }
        return cpus;
    }
}

ErrorOr<void> AffinityMover::apply(GroupPlacement const& placement)
{
    for (pid_t tid : m_tids) {
        auto result = set_thread_affinity(tid, placement.cpus);
        // A thread that has exited (ESRCH) is not an error: its VM is shutting down.
        if (!result && result.error().code() != ESRCH)
            return tl::unexpected(result.error().with_prefix(fmt::format("thread {}", tid)));
    }
    return {};
}

ErrorOr<void> CgroupCpusetMover::apply(GroupPlacement const& placement)
{
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(m_dir, error))
        return make_error(ErrorKind::NotFound, fmt::format("{}: no such cgroup directory", m_dir));
    bool is_v2 = fs::exists(fs::path(m_dir) / "cgroup.controllers", error);
    if (is_v2) {
        auto parent = fs::path(m_dir).parent_path();
        auto control = (parent / "cgroup.subtree_control").string();
        auto enabled = sys::read_file(control);
        if (enabled && enabled->find("cpuset") == std::string::npos)
            TRY(write_text(control, "+cpuset"));
    }
    auto mems_path = (fs::path(m_dir) / "cpuset.mems").string();
    // mems before cpus, so the tasks never run where their memory may not be.
    if (!placement.nodes.empty()) {
        CpuSet nodes;
        for (u32 node : placement.nodes)
            nodes.add(node);
        TRY(write_text(mems_path, nodes.to_list()));
    } else if (auto mems = sys::read_file(mems_path); mems && mems->find_first_not_of(" \n") == std::string::npos) {
        // A new v1 cpuset accepts no task until it has memory nodes: inherit the parent's.
        auto parent = fs::path(m_dir).parent_path();
        auto inherited = sys::read_file((parent / (is_v2 ? "cpuset.mems.effective" : "cpuset.mems")).string());
        if (inherited && inherited->find_first_not_of(" \n") != std::string::npos)
            TRY(write_text(mems_path, *inherited));
    }
    TRY(write_text((fs::path(m_dir) / "cpuset.cpus").string(), placement.cpus.to_list()));
    return {};
}

} // namespace kasou::sched
