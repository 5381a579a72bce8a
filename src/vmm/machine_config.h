#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/cpu_features.h"
#include "base/error.h"
#include "base/types.h"
#include "engine/vm.h"
#include "virtio/adaptive_poll.h"
#include "vmm/device_specs.h"

namespace kasou::vmm {

// Where the COM1 console goes: `stdio`, `file:PATH` (output only, truncated) or `unix:PATH`
// (connects to a listening Unix stream socket, both directions).
struct SerialSpec {
    enum class Kind { Stdio, File, Unix };
    Kind kind { Kind::Stdio };
    std::string path;

    static ErrorOr<SerialSpec> parse(std::string const& text);
};

// What runs the guest's code (--accel): KVM, kasou's software CPU, or KVM when /dev/kvm opens
// and the software CPU otherwise.
enum class Accel { Auto, Kvm, Emu };

// Everything needed to build one machine. Produced by the command line (or later the API), checked
// by validate() against the host before anything is created.
struct MachineConfig {
    static constexpr u64 DEFAULT_MEMORY = 256 * MiB;
    static constexpr u64 MIN_MEMORY = 1 * MiB;
    static constexpr char const* DEFAULT_COMMAND_LINE = "console=ttyS0 reboot=k panic=-1";

    std::string kernel_path;
    std::optional<std::string> initrd_path;
    bool flat { false };
    u32 cpus { 1 };
    // The guest sees two threads per core (Firecracker's "smt"); cpus must then be 1 or even.
    bool smt { false };
    u64 memory { DEFAULT_MEMORY };
    std::optional<std::string> command_line; // unset: DEFAULT_COMMAND_LINE
    SerialSpec serial;
    std::vector<arch::x86_64::CpuFeature> hidden_features;
    std::vector<DiskSpec> disks;      // --disk: one virtio-blk device each
    bool entropy { true };            // virtio-rng; --no-rng leaves it out
    std::string state_dir;            // the registry that vol: disks are looked up in
    std::optional<std::string> cores; // --cores auto|LIST: run the vCPUs on a core group
    std::vector<NetSpec> nets;        // --net: one virtio-net device each
    std::optional<VsockSpec> vsock;   // --vsock
    bool virtio_console { false };    // --console virtio: the console is hvc0, not COM1
    Accel accel { Accel::Auto };
    // --irqchip split|kernel; unset: split where the engine offers it.
    std::optional<engine::InterruptControllers> irqchip;
    // --io-poll-us: how long a virtio device's I/O thread polls for the next request at most.
    std::chrono::microseconds io_poll { virtio::AdaptivePoll::DEFAULT_MAXIMUM };
    // When kasou started, for the boot timer.
    std::chrono::steady_clock::time_point start_time { std::chrono::steady_clock::now() };

    static constexpr char const* VIRTIO_CONSOLE_COMMAND_LINE = "console=hvc0 reboot=k panic=-1";

    std::string effective_command_line() const
    {
        return command_line.value_or(virtio_console ? VIRTIO_CONSOLE_COMMAND_LINE : DEFAULT_COMMAND_LINE);
    }

    // Refuses zero or absurd sizes and counts: memory must be a multiple of 4 KiB, at least
    // MIN_MEMORY and at most host_memory; cpus from 1 to max_vcpus,
    // and even (or 1) with smt.
    ErrorOr<void> validate(u64 host_memory, int max_vcpus) const;
};

} // namespace kasou::vmm
