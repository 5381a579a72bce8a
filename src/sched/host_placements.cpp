#include "sched/host_placements.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/log.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"

namespace kasou::sched {

namespace {

constexpr char const* ENTRY_SUFFIX = ".json";

std::optional<i32> parse_pid(std::string_view text)
{
    i32 pid = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (error != std::errc() || end != text.data() + text.size() || pid <= 0)
        return std::nullopt;
    return pid;
}

// The pid an entry file (PID.json) or its temporary (PID.json.tmp) belongs to.
std::optional<i32> pid_of_file(std::string_view name, bool& temporary)
{
    temporary = name.ends_with(".tmp");
    if (temporary)
        name.remove_suffix(4);
    if (!name.ends_with(ENTRY_SUFFIX))
        return std::nullopt;
    name.remove_suffix(std::string_view(ENTRY_SUFFIX).size());
    return parse_pid(name);
}

ErrorOr<PlacementEntry> parse_entry(std::string const& text)
{
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object())
        return make_error("not a JSON object");
    for (auto const& [key, value] : json.items()) {
        if (key != "pid" && key != "start_time" && key != "cpus")
            return make_error(fmt::format("unknown field '{}'", key));
    }
    auto const pid = json.find("pid");
    auto const start = json.find("start_time");
    auto const cpus = json.find("cpus");
    if (pid == json.end() || !pid->is_number_integer() || pid->get<i64>() <= 0 || pid->get<i64>() > INT32_MAX)
        return make_error("'pid' is missing or not a process id");
    if (start == json.end() || !start->is_number_unsigned())
        return make_error("'start_time' is missing or not a whole number");
    if (cpus == json.end() || !cpus->is_string())
        return make_error("'cpus' is missing or not a CPU list");
    PlacementEntry entry;
    entry.process = { pid->get<i32>(), start->get<u64>() };
    entry.cpus = TRY(CpuSet::parse_list(cpus->get<std::string>()).map_error([](Error const& error) { return error.with_prefix("'cpus'"); }));
    return entry;
}

std::string format_entry(PlacementEntry const& entry)
{
    nlohmann::json json { { "pid", entry.process.pid }, { "start_time", entry.process.start_time }, { "cpus", entry.cpus.to_list() } };
    return json.dump() + "\n";
}

// An exclusive flock on the record's lock file, held while the object lives.
ErrorOr<Fd> lock_record(std::string const& directory)
{
    Fd lock = TRY(sys::open(directory + "/cores.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    TRY(sys::flock(lock.get(), LOCK_EX));
    return lock;
}

void remove_file(std::string const& path)
{
    if (auto removed = sys::unlink(path); !removed && removed.error().code() != ENOENT)
        spdlog::warn("cannot remove {}: {}", path, removed.error().to_string());
}

} // namespace

ProcessIdentity ProcessIdentity::self()
{
    // Our own /proc entry exists as long as we run; without procfs no entry can be checked, and
    // every one reads as stale.
    auto pid = static_cast<i32>(::getpid());
    return of(pid).value_or(ProcessIdentity { pid, 0 });
}

std::optional<ProcessIdentity> ProcessIdentity::of(i32 pid)
{
    auto stat = sys::read_file(fmt::format("/proc/{}/stat", pid));
    if (!stat)
        return std::nullopt;
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so fields are counted
    // from the last ')'. STATE is field 3, starttime field 22.
    auto close = stat->rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::vector<std::string_view> fields;
    std::string_view rest = std::string_view(*stat).substr(close + 1);
    while (!rest.empty()) {
        auto start = rest.find_first_not_of(' ');
        if (start == std::string_view::npos)
            break;
        rest.remove_prefix(start);
        auto end = std::min(rest.find(' '), rest.size());
        fields.push_back(rest.substr(0, end));
        rest.remove_prefix(end);
    }
    if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X")
        return std::nullopt;
    u64 start_time = 0;
    auto text = fields[19];
    if (std::from_chars(text.data(), text.data() + text.size(), start_time).ec != std::errc())
        return std::nullopt;
    return ProcessIdentity { pid, start_time };
}

HostPlacements::HostPlacements(std::string directory, ProcessIdentity owner)
    : m_directory(std::move(directory))
    , m_owner(owner)
{
}

HostPlacements::HostPlacements(HostPlacements&& other) noexcept
    : m_directory(std::exchange(other.m_directory, {}))
    , m_owner(other.m_owner)
{
}

HostPlacements& HostPlacements::operator=(HostPlacements&& other) noexcept
{
    if (this != &other) {
        remove_own_entry();
        m_directory = std::exchange(other.m_directory, {});
        m_owner = other.m_owner;
    }
    return *this;
}

HostPlacements::~HostPlacements() { remove_own_entry(); }

ErrorOr<HostPlacements> HostPlacements::open(std::string const& state_dir, ProcessIdentity owner)
{
    if (state_dir.empty() || state_dir.front() != '/')
        return make_error(fmt::format("the state directory '{}' is not an absolute path", state_dir));
    std::string directory = state_dir + "/cores";
    auto made = sys::mkdir_all(directory, 0755).and_then([&] { return lock_record(directory); });
    if (!made)
        return tl::unexpected(made.error().with_prefix(fmt::format("placement record {} cannot be used", directory)));
    return HostPlacements(std::move(directory), owner);
}

std::string HostPlacements::entry_path(i32 pid) const { return fmt::format("{}/{}{}", m_directory, pid, ENTRY_SUFFIX); }

void HostPlacements::remove_own_entry()
{
    if (m_directory.empty())
        return;
    auto lock = lock_record(m_directory);
    if (!lock)
        spdlog::warn("placement record {}: {}", m_directory, lock.error().to_string());
    remove_file(entry_path(m_owner.pid));
    m_directory.clear();
}

ErrorOr<std::vector<PlacementEntry>> HostPlacements::live_entries_locked()
{
    std::vector<PlacementEntry> entries;
    std::error_code error;
    for (auto const& file : std::filesystem::directory_iterator(m_directory, error)) {
        std::string name = file.path().filename().string();
        bool temporary = false;
        auto pid = pid_of_file(name, temporary);
        if (!pid)
            continue;
        auto process = ProcessIdentity::of(*pid);
        std::string path = file.path().string();
        if (!process) {
            // The writer is gone: whatever it held is free again.
            if (!temporary)
                spdlog::info("placement record: pid {} is gone; its CPUs are free again", *pid);
            remove_file(path);
            continue;
        }
        if (temporary)
            continue; // being written under an earlier lock holder that died mid-way, or ours
        auto text = TRY(sys::read_file(path));
        auto entry = parse_entry(text);
        if (!entry)
            return make_error(fmt::format("placement record {} is unreadable: {} (pid {} still runs; remove the file if it is not kasou)",
                path, entry.error().to_string(), *pid));
        if (entry->process.pid != *pid)
            return make_error(fmt::format("placement record {} names pid {}", path, entry->process.pid));
        if (entry->process.start_time != process->start_time) {
            spdlog::info("placement record: pid {} now belongs to another process; the CPUs its former owner held are free again", *pid);
            remove_file(path);
            continue;
        }
        entries.push_back(std::move(*entry));
    }
    if (error)
        return make_errno_error(error.value(), fmt::format("reading {}", m_directory));
    std::sort(entries.begin(), entries.end(), [](auto const& a, auto const& b) { return a.process.pid < b.process.pid; });
    return entries;
}

ErrorOr<void> HostPlacements::update(std::function<ErrorOr<CpuSet>(std::vector<PlacementEntry> const& others)> const& choose)
{
    Fd lock = TRY(lock_record(m_directory));
    auto entries = TRY(live_entries_locked());
    std::erase_if(entries, [&](PlacementEntry const& entry) { return entry.process.pid == m_owner.pid; });
    CpuSet cpus = TRY(choose(entries));
    if (cpus.empty()) {
        remove_file(entry_path(m_owner.pid));
        return {};
    }
    return write_file_atomically(entry_path(m_owner.pid), format_entry({ m_owner, cpus }));
}

ErrorOr<std::vector<PlacementEntry>> HostPlacements::list()
{
    Fd lock = TRY(lock_record(m_directory));
    return live_entries_locked();
}

} // namespace kasou::sched
