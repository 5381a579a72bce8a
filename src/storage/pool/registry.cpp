#include "storage/pool/registry.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"

namespace kasou::storage {

namespace {

std::string registry_path(std::string const& state_dir) { return state_dir + "/pools.json"; }

ErrorOr<void> check_state_dir(std::string const& state_dir)
{
    if (state_dir.empty())
        return make_error("the state directory is empty: give --state-dir (or KASOU_STATE_DIR) a directory, or leave it out for /var/lib/kasou");
    if (state_dir.front() != '/')
        return make_error(fmt::format("the state directory '{}' is not an absolute path", state_dir));
    return {};
}

// Creates STATE_DIR and its locks/ (the registry lock file with them) or says why it cannot.
ErrorOr<void> prepare_state_dir(std::string const& state_dir)
{
    TRY(check_state_dir(state_dir));
    auto made = sys::mkdir_all(state_dir + "/locks", 0755).and_then([&] { return sys::open(state_dir + "/registry.lock", O_RDWR | O_CREAT, 0644); });
    if (!made)
        return tl::unexpected(made.error().with_prefix(fmt::format("state directory {} cannot be used", state_dir)));
    return {};
}

ErrorOr<std::vector<PoolRecord>> load(std::string const& state_dir)
{
    TRY(check_state_dir(state_dir));
    std::string path = registry_path(state_dir);
    auto text = sys::read_file(path);
    if (!text) {
        if (text.error().code() == ENOENT)
            return std::vector<PoolRecord> {};
        return tl::unexpected(text.error());
    }
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("pools") || !json["pools"].is_array())
        return make_error(ErrorKind::Corrupt, fmt::format("{} is not a kasou pool registry (expected {{\"pools\": [...]}})", path));
    std::vector<PoolRecord> records;
    for (auto const& entry : json["pools"]) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("uuid") || !entry["uuid"].is_string()
            || !entry.contains("disks") || !entry["disks"].is_array())
            return make_error(ErrorKind::Corrupt, fmt::format("{}: a pool entry lacks name, uuid or disks", path));
        PoolRecord record { entry["name"], entry["uuid"], {} };
        for (auto const& disk : entry["disks"]) {
            if (!disk.is_string())
                return make_error(ErrorKind::Corrupt, fmt::format("{}: pool {} has a disk that is not a path", path, record.name));
            record.disks.push_back(disk);
        }
        records.push_back(std::move(record));
    }
    return records;
}

ErrorOr<void> save(std::string const& state_dir, std::vector<PoolRecord> const& records)
{
    nlohmann::json pools = nlohmann::json::array();
    for (auto const& record : records)
        pools.push_back({ { "name", record.name }, { "uuid", record.uuid }, { "disks", record.disks } });
    std::string text = nlohmann::json { { "pools", pools } }.dump(2) + "\n";
    return write_file_atomically(registry_path(state_dir), text);
}

} // namespace

ErrorOr<std::string> resolve_state_dir(std::string const& text)
{
    if (text.empty())
        return tl::unexpected(check_state_dir(text).error());
    std::error_code error;
    auto absolute = std::filesystem::absolute(text, error);
    if (error)
        return make_errno_error(error.value(), fmt::format("state directory {}", text));
    std::string path = absolute.lexically_normal().string();
    if (path.size() > 1 && path.back() == '/')
        path.pop_back();
    return path;
}

ErrorOr<std::vector<PoolRecord>> Registry::list(std::string const& state_dir)
{
    return load(state_dir);
}

ErrorOr<PoolRecord> Registry::find(std::string const& state_dir, std::string const& name)
{
    auto records = TRY(load(state_dir));
    for (auto const& record : records) {
        if (record.name == name)
            return record;
    }
    std::string known;
    for (auto const& record : records)
        known += (known.empty() ? "" : ", ") + record.name;
    return make_error(ErrorKind::NotFound, fmt::format("no pool named '{}' in {} (known: {}); create it with 'kasou pool create' or bring its disks in with 'kasou pool import'",
        name, state_dir, known.empty() ? "none" : known));
}

ErrorOr<void> Registry::modify(std::string const& state_dir, std::function<ErrorOr<void>(std::vector<PoolRecord>&)> const& change)
{
    TRY(prepare_state_dir(state_dir));
    Fd lock = TRY(sys::open(state_dir + "/registry.lock", O_RDWR | O_CREAT, 0644));
    TRY(sys::flock(lock.get(), LOCK_EX));
    auto records = TRY(load(state_dir));
    TRY(change(records));
    return save(state_dir, records);
}

ErrorOr<Fd> Registry::lock_pool(std::string const& state_dir, std::string const& name)
{
    TRY(prepare_state_dir(state_dir));
    Fd fd = TRY(sys::open(state_dir + "/locks/" + name + ".lock", O_RDWR | O_CREAT, 0644));
    if (auto locked = sys::flock(fd.get(), LOCK_EX | LOCK_NB); !locked) {
        if (locked.error().code() != EWOULDBLOCK)
            return tl::unexpected(locked.error());
        char buffer[32] = {};
        auto n = sys::pread(fd.get(), buffer, sizeof(buffer) - 1, 0);
        std::string pid = n ? std::string(buffer, *n) : "";
        pid.erase(std::remove(pid.begin(), pid.end(), '\n'), pid.end());
        return make_error(ErrorKind::Busy, fmt::format("pool {} is in use by pid {}", name, pid.empty() ? "unknown" : pid));
    }
    std::string pid = fmt::format("{}\n", ::getpid());
    TRY(sys::ftruncate(fd.get(), 0));
    TRY(sys::pwrite_exact(fd.get(), pid.data(), pid.size(), 0));
    return fd;
}

} // namespace kasou::storage
