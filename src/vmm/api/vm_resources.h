#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/error.h"
#include "vmm/machine_config.h"

namespace kasou::vmm::api {

// The machine a Firecracker-style client describes before InstanceStart, one resource at a time
// (PUT /boot-source, /machine-config, /drives/{id}, /network-interfaces/{id}, /vsock, /entropy),
// and how it turns into a MachineConfig. Each put_* checks the whole body first and changes
// nothing when it fails; the error names the field. Bodies follow Firecracker's schemas (unknown
// fields refused, as Firecracker does) plus kasou's own fields (docs/api.md).
//
// Drives keep the order they were first put in, except that the root device, when there is one,
// comes first (it is /dev/vda) and its root= argument is added to the kernel command line, as
// Firecracker does. Putting an id again replaces that drive or interface in place.
class VmResources {
public:
    // Firecracker's defaults: 1 vCPU, 128 MiB, no entropy device until PUT /entropy. `base`
    // carries what the API does not set (state directory, serial console, start time).
    static VmResources for_api(MachineConfig base);
    // The resources of a machine built from the command line, to show it through GET /vm/config.
    static VmResources of(MachineConfig const& config);

    ErrorOr<void> put_boot_source(nlohmann::json const& body);
    // `partial`: PATCH /machine-config, where vcpu_count and mem_size_mib may be left out.
    ErrorOr<void> put_machine_config(nlohmann::json const& body, bool partial);
    ErrorOr<void> put_drive(std::string const& id, nlohmann::json const& body);
    ErrorOr<void> put_network_interface(std::string const& id, nlohmann::json const& body);
    ErrorOr<void> put_vsock(nlohmann::json const& body);
    ErrorOr<void> put_entropy(nlohmann::json const& body);

    // The configuration to build; fails while no boot source was given.
    ErrorOr<MachineConfig> machine_config() const;

    // Firecracker's MachineConfiguration and FullVmConfiguration (GET /machine-config, GET /vm/config).
    nlohmann::json machine_config_json() const;
    nlohmann::json full_json() const;

private:
    struct Drive {
        std::string id;
        DiskSpec disk;
        bool root { false };
        std::string partuuid;
    };
    struct Interface {
        std::string id;
        NetSpec net;
    };

    explicit VmResources(MachineConfig config)
        : m_config(std::move(config))
    {
    }

    MachineConfig m_config; // disks and nets are kept below, with their ids
    std::vector<Drive> m_drives;
    std::vector<Interface> m_interfaces;
};

} // namespace kasou::vmm::api
