#include "vmm/api/api_controller.h"

#include <chrono>
#include <fcntl.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::vmm::api {

namespace {

using Json = nlohmann::json;

constexpr unsigned OK = 200;
constexpr unsigned NO_CONTENT = 204;
constexpr unsigned BAD_REQUEST = 400;

// Firecracker's resources that kasou does not have; they answer 400 naming themselves.
constexpr std::string_view UNSUPPORTED_PATHS[] = { "/balloon", "/mmds", "/cpu-config", "/serial", "/pmem", "/hotplug" };

http::Response json_response(Json const& body)
{
    return { OK, body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json" };
}

http::Response no_content()
{
    return { NO_CONTENT, {}, {} };
}

// Firecracker's ids: letters, digits and underscores, 1 to 64 of them.
bool valid_id(std::string_view id)
{
    if (id.empty() || id.size() > 64)
        return false;
    for (char c : id) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
            return false;
    }
    return true;
}

ErrorOr<Json> parse_body(std::string const& body)
{
    if (body.empty())
        return make_error("the request needs a JSON body");
    Json json;
    try {
        json = Json::parse(body);
    } catch (Json::exception const& error) {
        // nlohmann's message names the byte where the text stopped being JSON.
        return make_error(fmt::format("the body is not valid JSON: {}", error.what()));
    }
    if (!json.is_object())
        return make_error(fmt::format("the body must be a JSON object, not {}", json.type_name()));
    return json;
}

// A JSON object's string field that must be present; `what` lists what it may be.
ErrorOr<std::string> required_string(Json const& json, char const* key, std::string_view what)
{
    auto it = json.find(key);
    if (it == json.end() || !it->is_string())
        return make_error(fmt::format("{}: required, one of {}", key, what));
    return it->get<std::string>();
}

// The fields a body may have, besides `known`, are refused as Firecracker refuses them.
ErrorOr<void> only_fields(Json const& json, std::initializer_list<std::string_view> known)
{
    for (auto const& [key, value] : json.items()) {
        if (std::find(known.begin(), known.end(), key) == known.end())
            return make_error(fmt::format("{}: unknown field", key));
    }
    return {};
}

// The one field the body of PUT /actions or PATCH /vm carries: a string among `allowed`.
ErrorOr<std::string> single_choice(std::string const& body, char const* key, std::initializer_list<std::string_view> allowed)
{
    auto json = TRY(parse_body(body));
    TRY(only_fields(json, { key }));
    auto it = json.find(key);
    if (it == json.end() || !it->is_string())
        return make_error(fmt::format("{}: required, one of {}", key, fmt::join(allowed, ", ")));
    auto value = it->get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
        return make_error(fmt::format("{}: \"{}\" is not one of {}", key, value, fmt::join(allowed, ", ")));
    return value;
}

ErrorOr<spdlog::level::level_enum> log_level(std::string const& name)
{
    static constexpr std::pair<std::string_view, spdlog::level::level_enum> LEVELS[] = {
        { "Error", spdlog::level::err }, { "Warning", spdlog::level::warn }, { "Info", spdlog::level::info },
        { "Debug", spdlog::level::debug }, { "Trace", spdlog::level::trace }, { "Off", spdlog::level::off },
    };
    for (auto const& [text, level] : LEVELS) {
        if (text == name)
            return level;
    }
    return make_error(fmt::format("level: \"{}\" is not one of Error, Warning, Info, Debug, Trace, Off", name));
}

u64 utc_milliseconds()
{
    return static_cast<u64>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

} // namespace

ApiController::ApiController(std::string instance_id, VmResources resources, Launch launch)
    : m_instance_id(std::move(instance_id))
    , m_resources(std::move(resources))
    , m_launch(std::move(launch))
    , m_stderr_sinks(spdlog::default_logger()->sinks())
{
}

void ApiController::attach(Machine& machine)
{
    m_machine = &machine;
    m_state = State::Running;
    m_started = true;
}

void ApiController::detach()
{
    m_machine = nullptr;
}

http::Response ApiController::fault(unsigned status, std::string_view reason)
{
    return { status, Json { { "fault_message", reason } }.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json" };
}

http::Service ApiController::service()
{
    return { [this](http::Request const& request) { return handle(request); },
        [this](unsigned status, std::string_view reason) {
            ++m_counters.requests;
            ++m_counters.request_fails;
            return fault(status, reason);
        } };
}

http::Response ApiController::handle(http::Request const& request)
{
    ++m_counters.requests;
    std::string path = request.target.substr(0, request.target.find('?'));
    auto response = route(request.method, path, request.body);
    if (response.status >= BAD_REQUEST) {
        ++m_counters.request_fails;
        spdlog::debug("API: {} {}: {}", request.method, path, response.body);
    }
    return response;
}

http::Response ApiController::route(std::string const& method, std::string const& path, std::string const& body)
{
    auto with_body = [&](auto const& change) -> http::Response {
        auto json = parse_body(body);
        if (!json)
            return fault(BAD_REQUEST, json.error().to_string());
        return change(*json);
    };
    auto resource = [&](std::string const& what, auto const& change) {
        return with_body([&](Json const& json) { return pre_boot(what, [&] { return change(json); }); });
    };
    // /drives/{id} and /network-interfaces/{id}
    auto item = [&](std::string_view prefix) -> std::optional<std::string> {
        if (!path.starts_with(prefix) || path.size() == prefix.size())
            return std::nullopt;
        return path.substr(prefix.size());
    };

    if (method == "GET") {
        if (path == "/")
            return instance_info();
        if (path == "/version")
            return json_response({ { "firecracker_version", KASOU_VERSION } });
        if (path == "/vm/config")
            return json_response(full_config());
        if (path == "/machine-config")
            return json_response(m_resources.machine_config_json());
    } else if (method == "PUT") {
        if (path == "/boot-source")
            return resource("PUT /boot-source", [&](Json const& json) { return m_resources.put_boot_source(json); });
        if (path == "/machine-config")
            return resource("PUT /machine-config", [&](Json const& json) { return m_resources.put_machine_config(json, false); });
        if (path == "/vsock")
            return resource("PUT /vsock", [&](Json const& json) { return m_resources.put_vsock(json); });
        if (path == "/entropy")
            return resource("PUT /entropy", [&](Json const& json) { return m_resources.put_entropy(json); });
        for (auto const& route : { std::pair { std::string_view("/drives/"), &VmResources::put_drive },
                 std::pair { std::string_view("/network-interfaces/"), &VmResources::put_network_interface } }) {
            auto put = route.second; // a plain variable: clang 14 cannot capture a structured binding
            auto id = item(route.first);
            if (!id)
                continue;
            if (!valid_id(*id))
                return fault(BAD_REQUEST, fmt::format("\"{}\" is not a valid id: 1 to 64 letters, digits or underscores", *id));
            return resource(fmt::format("PUT {}", path), [&, put](Json const& json) { return (m_resources.*put)(*id, json); });
        }
        if (path == "/actions")
            return action(body);
        if (path == "/logger")
            return set_logger(body);
        if (path == "/metrics")
            return set_metrics(body);
    } else if (method == "PATCH") {
        if (path == "/vm")
            return set_vm_state(body);
        if (path == "/machine-config")
            return resource("PATCH /machine-config", [&](Json const& json) { return m_resources.put_machine_config(json, true); });
        if (item("/drives/") || item("/network-interfaces/"))
            return fault(BAD_REQUEST, fmt::format("PATCH {}: kasou does not change drives or network interfaces of a machine after it is configured", path));
    }
    if (path.starts_with("/snapshot/"))
        return fault(BAD_REQUEST, fmt::format("{} {}: snapshots are not available through kasou's API yet", method, path));
    for (auto unsupported : UNSUPPORTED_PATHS) {
        if (path == unsupported || (path.starts_with(unsupported) && path[unsupported.size()] == '/'))
            return fault(BAD_REQUEST, fmt::format("{} {}: not supported by kasou", method, path));
    }
    return fault(BAD_REQUEST, fmt::format("Invalid request method and/or path: {} {}", method, path));
}

http::Response ApiController::pre_boot(std::string const& what, std::function<ErrorOr<void>()> const& change)
{
    if (m_started)
        return fault(BAD_REQUEST, fmt::format("{}: the machine is already started; this is possible only before InstanceStart", what));
    if (auto changed = change(); !changed)
        return fault(BAD_REQUEST, fmt::format("{}: {}", what, changed.error().to_string()));
    return no_content();
}

http::Response ApiController::action(std::string const& body)
{
    auto type = single_choice(body, "action_type", { "InstanceStart", "SendCtrlAltDel", "FlushMetrics" });
    if (!type)
        return fault(BAD_REQUEST, type.error().to_string());
    if (*type == "InstanceStart") {
        if (m_started)
            return fault(BAD_REQUEST, "InstanceStart: the machine is already started");
        auto config = m_resources.machine_config();
        if (!config)
            return fault(BAD_REQUEST, fmt::format("InstanceStart: {}", config.error().to_string()));
        auto machine = m_launch(*config);
        if (!machine)
            return fault(BAD_REQUEST, fmt::format("InstanceStart: {}", machine.error().to_string()));
        attach(**machine);
        return no_content();
    }
    if (*type == "SendCtrlAltDel") {
        if (!m_machine)
            return fault(BAD_REQUEST, "SendCtrlAltDel: the machine is not running");
        if (auto sent = m_machine->send_ctrl_alt_del(); !sent)
            return fault(BAD_REQUEST, fmt::format("SendCtrlAltDel: {}", sent.error().to_string()));
        ++m_counters.ctrl_alt_del;
        return no_content();
    }
    // FlushMetrics
    if (!m_metrics_file.valid())
        return fault(BAD_REQUEST, "FlushMetrics: no metrics file; PUT /metrics first");
    if (auto flushed = flush_metrics(); !flushed)
        return fault(BAD_REQUEST, fmt::format("FlushMetrics: {}", flushed.error().to_string()));
    return no_content();
}

http::Response ApiController::set_vm_state(std::string const& body)
{
    auto state = single_choice(body, "state", { "Paused", "Resumed" });
    if (!state)
        return fault(BAD_REQUEST, state.error().to_string());
    if (!m_machine)
        return fault(BAD_REQUEST, fmt::format("{}: the machine is not running", *state));
    if (*state == "Paused") {
        if (m_state == State::Paused)
            return no_content();
        if (auto paused = m_machine->pause(); !paused)
            return fault(BAD_REQUEST, fmt::format("Paused: {}", paused.error().to_string()));
        m_state = State::Paused;
        ++m_counters.pauses;
        return no_content();
    }
    if (m_state == State::Running)
        return no_content();
    if (auto resumed = m_machine->resume(); !resumed)
        return fault(BAD_REQUEST, fmt::format("Resumed: {}", resumed.error().to_string()));
    m_state = State::Running;
    ++m_counters.resumes;
    return no_content();
}

http::Response ApiController::set_logger(std::string const& body)
{
    auto json = parse_body(body);
    if (!json)
        return fault(BAD_REQUEST, json.error().to_string());
    auto checked = [&]() -> ErrorOr<std::pair<spdlog::level::level_enum, std::shared_ptr<spdlog::sinks::sink>>> {
        TRY(only_fields(*json, { "log_path", "level", "show_level", "show_log_origin", "module" }));
        for (auto key : { "log_path", "level", "module" }) {
            if (json->contains(key) && !(*json)[key].is_string())
                return make_error(fmt::format("{}: expected a string", key));
        }
        for (auto key : { "show_level", "show_log_origin" }) {
            if (json->contains(key) && !(*json)[key].is_boolean())
                return make_error(fmt::format("{}: expected true or false", key));
        }
        if (json->value("show_log_origin", false))
            return make_error(ErrorKind::Unsupported, "show_log_origin: kasou's log lines carry no source location");
        if (!json->value("module", std::string()).empty())
            return make_error(ErrorKind::Unsupported, "module: kasou does not filter its log by module");
        auto level = TRY(log_level(json->value("level", std::string("Info"))));
        std::shared_ptr<spdlog::sinks::sink> file;
        if (auto path = json->value("log_path", std::string()); !path.empty()) {
            try {
                file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
            } catch (spdlog::spdlog_ex const& error) {
                return make_error(fmt::format("log_path: {}", error.what()));
            }
            file->set_pattern(fmt::format("%Y-%m-%dT%H:%M:%S.%f [{}{}] %v", m_instance_id, json->value("show_level", false) ? ":%l" : ""));
        }
        return std::pair { level, file };
    }();
    if (!checked)
        return fault(BAD_REQUEST, fmt::format("PUT /logger: {}", checked.error().to_string()));
    auto sinks = m_stderr_sinks;
    if (checked->second)
        sinks.push_back(checked->second);
    auto logger = std::make_shared<spdlog::logger>(spdlog::default_logger()->name(), sinks.begin(), sinks.end());
    logger->set_level(checked->first);
    spdlog::set_default_logger(logger);
    m_logger_config = *json;
    return no_content();
}

http::Response ApiController::set_metrics(std::string const& body)
{
    auto json = parse_body(body);
    if (!json)
        return fault(BAD_REQUEST, json.error().to_string());
    auto opened = [&]() -> ErrorOr<Fd> {
        TRY(only_fields(*json, { "metrics_path", "emit_id", "properties" }));
        auto path = TRY(required_string(*json, "metrics_path", "a file or named pipe"));
        if (json->contains("emit_id") && !(*json)["emit_id"].is_boolean())
            return make_error("emit_id: expected true or false");
        if (json->contains("properties")) {
            auto const& properties = (*json)["properties"];
            if (!properties.is_object())
                return make_error("properties: expected an object of strings");
            for (auto const& [key, value] : properties.items()) {
                if (!value.is_string())
                    return make_error(fmt::format("properties.{}: expected a string", key));
            }
        }
        return TRY(sys::open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600).map_error(
            [&](Error const& error) { return error.with_prefix(fmt::format("metrics_path {}", path)); }));
    }();
    if (!opened)
        return fault(BAD_REQUEST, fmt::format("PUT /metrics: {}", opened.error().to_string()));
    m_metrics_file = std::move(*opened);
    m_metrics_config = *json;
    return no_content();
}

ErrorOr<void> ApiController::flush_metrics()
{
    if (!m_metrics_file.valid())
        return {};
    Json line {
        { "utc_timestamp_ms", utc_milliseconds() },
        { "api_server", { { "requests", m_counters.requests }, { "request_fails", m_counters.request_fails } } },
        { "vm", { { "state", state_name() }, { "pauses", m_counters.pauses }, { "resumes", m_counters.resumes },
                    { "ctrl_alt_del", m_counters.ctrl_alt_del } } },
    };
    if (m_metrics_config.value("emit_id", false))
        line["id"] = m_instance_id;
    if (m_metrics_config.contains("properties"))
        line["properties"] = m_metrics_config["properties"];
    std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    TRY(sys::write_exact(m_metrics_file.get(), text.data(), text.size()).map_error([](Error const& error) { return error.with_prefix("metrics"); }));
    m_counters = {};
    return {};
}

char const* ApiController::state_name() const
{
    switch (m_state) {
    case State::NotStarted:
        return "Not started";
    case State::Running:
        return "Running";
    case State::Paused:
        return "Paused";
    }
    return "?";
}

http::Response ApiController::instance_info() const
{
    return json_response({ { "id", m_instance_id }, { "state", state_name() }, { "vmm_version", KASOU_VERSION }, { "app_name", APP_NAME } });
}

Json ApiController::full_config() const
{
    auto json = m_resources.full_json();
    json["logger"] = m_logger_config.is_null() ? Json() : m_logger_config;
    json["metrics"] = m_metrics_config.is_null() ? Json() : m_metrics_config;
    return json;
}

} // namespace kasou::vmm::api
