#pragma once

// MachineConfig to and from JSON, the form an API request or a saved instance carries it in:
//
//   {
//     "kernel": "/boot/vmlinuz", "initrd": "/boot/initrd.img", "flat": false,
//     "cpus": 2, "smt": false, "memory": 268435456, "command_line": "console=ttyS0",
//     "serial": { "kind": "file", "path": "/tmp/console" },
//     "hidden_features": [ "xsave" ],
//     "disks": [ { "path": "root.img", "read_only": false, "serial": "", "queues": 1 },
//                { "volume": "tank/data", "read_only": true, "serial": "data", "queues": 2 } ],
//     "entropy": true, "state_dir": "/var/lib/kasou", "cores": "auto",
//     "nets": [ { "tap": "tap0", "mac": "" } ],
//     "vsock": { "cid": 3, "uds": "/tmp/vsock", "max_connections": 0 },
//     "virtio_console": false, "io_poll_us": 50
//   }
//
// Only "kernel" is required; a missing field takes MachineConfig's default (so "{}" plus a
// kernel is the smallest machine). The parser is strict: an unknown field, a value of the wrong
// type or out of range is an error naming the field ("disks[1].queues: ..."). Checks that need the
// host (memory against its RAM, cpus against KVM's limit) stay in MachineConfig::validate.
// start_time is not carried: it is when this process started.

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/error.h"
#include "vmm/machine_config.h"

namespace kasou::vmm {

// The most vCPUs a configuration may name: KVM's KVM_MAX_VCPUS on x86-64.
constexpr u32 MAX_CONFIG_CPUS = 4096;
// The longest I/O polling a configuration may ask for, as --io-poll-us allows.
constexpr u64 MAX_CONFIG_IO_POLL_US = 1000;

nlohmann::json machine_config_to_json(MachineConfig const& config);
ErrorOr<MachineConfig> machine_config_from_json(nlohmann::json const& json);
// The same from text; malformed JSON is an error naming the position.
ErrorOr<MachineConfig> machine_config_from_json_text(std::string_view text);

} // namespace kasou::vmm
