#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include <nlohmann/json.hpp>
#include <spdlog/common.h>

#include "base/fd.h"
#include "http/message.h"
#include "vmm/api/vm_resources.h"
#include "vmm/machine.h"

namespace kasou::vmm::api {

// The per-VM API, Firecracker-compatible (docs/api.md): routes each request to the resources of a
// machine not yet started, or to the running Machine (pause, resume, Ctrl+Alt+Del), and answers
// as Firecracker does: 200 with a JSON body for a GET, 204 for a successful PUT or PATCH, 400 with
// {"fault_message": ...} for any error, after which nothing has changed. Pre-boot resources are
// refused once the machine has started.
//
// The controller does not own the machine: InstanceStart hands the configuration to `launch`
// (kasou run's loop builds, starts and owns the machine) and the machine it returns is driven
// until detach(); a machine the command line started is given with attach(). Everything runs on
// the one thread of that loop; Machine::pause() is the only call that waits, and only until the
// vCPUs are parked.
class ApiController {
public:
    using Launch = std::function<ErrorOr<Machine*>(MachineConfig const&)>;

    static constexpr char const* APP_NAME = "kasou";

    ApiController(std::string instance_id, VmResources resources, Launch launch);

    // The machine now running (the command line's, or a restarted one); detach() when it ends.
    void attach(Machine& machine);
    void detach();

    http::Response handle(http::Request const& request);
    // A 4xx or 5xx answer in Firecracker's form: {"fault_message": reason}.
    static http::Response fault(unsigned status, std::string_view reason);
    http::Service service();

    // Appends one line of metrics to the metrics file (PUT /metrics); nothing when none is set.
    ErrorOr<void> flush_metrics();

private:
    enum class State { NotStarted, Running, Paused };

    http::Response route(std::string const& method, std::string const& path, std::string const& body);
    http::Response pre_boot(std::string const& what, std::function<ErrorOr<void>()> const& change);
    http::Response action(std::string const& body);
    http::Response set_vm_state(std::string const& body);
    http::Response set_logger(std::string const& body);
    http::Response set_metrics(std::string const& body);
    http::Response instance_info() const;
    nlohmann::json full_config() const;
    char const* state_name() const;

    std::string m_instance_id;
    VmResources m_resources;
    Launch m_launch;
    Machine* m_machine { nullptr };
    State m_state { State::NotStarted };
    bool m_started { false }; // once InstanceStart or attach(): pre-boot resources are closed for good
    std::vector<spdlog::sink_ptr> m_stderr_sinks; // the logger's own, kept when PUT /logger adds a file
    nlohmann::json m_logger_config;
    nlohmann::json m_metrics_config;
    Fd m_metrics_file;
    // Counted since the last metrics line, as Firecracker's metrics are.
    struct Counters {
        u64 requests { 0 };
        u64 request_fails { 0 };
        u64 pauses { 0 };
        u64 resumes { 0 };
        u64 ctrl_alt_del { 0 };
    } m_counters;
};

} // namespace kasou::vmm::api
