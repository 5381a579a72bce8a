#include "container/state_store.h"

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <sys/stat.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/sys_path.h"
#include "base/try.h"

namespace kasou::container {

using Json = nlohmann::json;

std::string_view status_name(Status status)
{
    switch (status) {
    case Status::Creating:
        return "creating";
    case Status::Created:
        return "created";
    case Status::Running:
        return "running";
    case Status::Paused:
        return "paused";
    case Status::Stopped:
        return "stopped";
    }
    return "unknown";
}

ErrorOr<StateStore> StateStore::open(std::string root)
{
    if (root.empty() || root[0] != '/') {
        std::error_code error;
        auto absolute = std::filesystem::absolute(root.empty() ? "." : root, error);
        if (error)
            return make_error(fmt::format("--root {}: {}", root, error.message()));
        root = absolute.lexically_normal().string();
    }
    while (root.size() > 1 && root.back() == '/')
        root.pop_back();
    TRY(sys::mkdir_all(root, 0711).map_error([&](Error const& error) { return error.with_prefix("--root"); }));
    return StateStore(std::move(root));
}

ErrorOr<void> StateStore::check_id(std::string const& id)
{
    if (id.empty())
        return make_error("a container ID is required");
    if (id.size() > 1024 || id[0] == '.' || id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != std::string::npos)
        return make_error(fmt::format("container ID \"{}\": use letters, digits, '_', '-' and '.', not first '.'", id));
    return {};
}

ErrorOr<void> StateStore::claim(std::string const& id) const
{
    TRY(check_id(id));
    auto made = sys::mkdir(directory(id), 0711);
    if (!made && made.error().code() == EEXIST)
        return make_error(ErrorKind::AlreadyExists, fmt::format("container \"{}\" already exists", id));
    return made;
}

ErrorOr<ContainerState> StateStore::load(std::string const& id) const
{
    TRY(check_id(id));
    struct stat st {};
    if (!sys::stat(directory(id), st))
        return make_error(ErrorKind::NotFound, fmt::format("container \"{}\" does not exist", id));
    ContainerState state;
    state.id = id;
    auto text = sys::read_file(directory(id) + "/state.json");
    if (!text)
        return state; // claimed, but create died before it wrote anything
    auto json = Json::parse(*text, nullptr, false);
    if (json.is_discarded() || !json.is_object())
        return make_error(ErrorKind::Corrupt, fmt::format("container \"{}\": state.json is damaged", id));
    state.pid = json.value("pid", 0);
    state.start_time = json.value("startTime", u64(0));
    state.bundle = json.value("bundle", "");
    state.rootfs = json.value("rootfs", "");
    state.created = json.value("created", "");
    state.cgroup = json.value("cgroup", "");
    state.created_done = json.value("createdDone", false);
    if (json.contains("annotations") && json["annotations"].is_object()) {
        for (auto const& [key, value] : json["annotations"].items()) {
            if (value.is_string())
                state.annotations[key] = value.get<std::string>();
        }
    }
    if (json.contains("coreGroup") && json["coreGroup"].is_number_unsigned())
        state.core_group = json["coreGroup"].get<u32>();
    return state;
}

ErrorOr<void> StateStore::save(ContainerState const& state) const
{
    Json json = {
        { "id", state.id },
        { "pid", state.pid },
        { "startTime", state.start_time },
        { "bundle", state.bundle },
        { "rootfs", state.rootfs },
        { "created", state.created },
        { "cgroup", state.cgroup },
        { "annotations", state.annotations },
        { "createdDone", state.created_done },
    };
    if (state.core_group)
        json["coreGroup"] = *state.core_group;
    return replace_file(directory(state.id) + "/state.json", json.dump());
}

ErrorOr<std::string> StateStore::saved_config(std::string const& id) const
{
    return sys::read_file(directory(id) + "/config.json");
}

ErrorOr<void> StateStore::save_config(std::string const& id, std::string const& text) const
{
    return replace_file(directory(id) + "/config.json", text);
}

ErrorOr<void> StateStore::remove(std::string const& id) const
{
    std::error_code error;
    std::filesystem::remove_all(directory(id), error);
    if (error)
        return make_errno_error(error.value(), "remove the state directory");
    return {};
}

ErrorOr<std::vector<std::string>> StateStore::ids() const
{
    std::vector<std::string> out;
    std::error_code error;
    for (auto const& entry : std::filesystem::directory_iterator(m_root, error)) {
        if (entry.is_directory())
            out.push_back(entry.path().filename().string());
    }
    if (error)
        return make_errno_error(error.value(), "list --root");
    std::sort(out.begin(), out.end());
    return out;
}

namespace {

// Fields of /proc/PID/stat after the command (which may hold spaces and parentheses).
std::optional<std::vector<std::string_view>> stat_fields(std::string const& text)
{
    auto close = text.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::vector<std::string_view> fields;
    std::string_view rest(text);
    rest.remove_prefix(close + 1);
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ')
            rest.remove_prefix(1);
        auto end = rest.find(' ');
        fields.push_back(rest.substr(0, end));
        if (end == std::string_view::npos)
            break;
        rest.remove_prefix(end);
    }
    return fields;
}

} // namespace

ErrorOr<void> replace_file(std::string const& path, std::string_view text)
{
    std::string temporary = path + ".tmp";
    {
        auto fd = TRY(sys::open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        TRY(sys::write_exact(fd.get(), text.data(), text.size()));
    }
    return sys::rename(temporary, path);
}

std::optional<u64> process_start_time(pid_t pid)
{
    auto text = sys::read_file(fmt::format("/proc/{}/stat", pid));
    if (!text)
        return std::nullopt;
    auto fields = stat_fields(*text);
    // Field 3 (state) is fields[0]; field 22 (starttime) is fields[19].
    if (!fields || fields->size() < 20)
        return std::nullopt;
    u64 ticks = 0;
    std::from_chars((*fields)[19].data(), (*fields)[19].data() + (*fields)[19].size(), ticks);
    return ticks;
}

bool process_ended(pid_t pid, u64 start_time)
{
    if (pid <= 0)
        return true;
    auto text = sys::read_file(fmt::format("/proc/{}/stat", pid));
    if (!text)
        return true;
    auto fields = stat_fields(*text);
    if (!fields || fields->size() < 20)
        return true;
    if ((*fields)[0] == "Z" || (*fields)[0] == "X")
        return true;
    u64 ticks = 0;
    std::from_chars((*fields)[19].data(), (*fields)[19].data() + (*fields)[19].size(), ticks);
    return ticks != start_time;
}

} // namespace kasou::container
