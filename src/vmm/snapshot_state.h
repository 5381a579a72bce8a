#pragma once

#include <span>
#include <variant>
#include <vector>

#include "arch/x86_64/cpu_state.h"
#include "base/error.h"
#include "devices/cmos_rtc.h"
#include "devices/i8042.h"
#include "devices/serial_16550.h"
#include "engine/irqchip_state.h"
#include "vmm/machine_config.h"
#include "vmm/split_irqchip.h"

namespace kasou::vmm {

// Everything a snapshot's state file holds: the machine's configuration, the size of its memory
// file, every vCPU's state, the interrupt controllers (kasou's own models or the engine's), the
// engine's guest clock and the legacy devices. The guest's RAM is in the memory file beside it.
// docs/snapshot.md describes the file format.
struct SnapshotState {
    MachineConfig config;
    u64 memory_size { 0 };
    std::vector<arch::x86_64::VcpuState> vcpus;
    std::variant<SplitIrqchip::State, engine::KernelIrqchipState> irqchip;
    engine::ClockState clock;
    devices::Serial16550::State uart;
    devices::CmosRtc::State rtc;
    devices::I8042::State i8042;
};

// The state file's header (docs/snapshot.md): magic, format version, body length and the CRC-32C
// of the header and of the body.
constexpr char SNAPSHOT_MAGIC[8] = { 'K', 'A', 'S', 'O', 'U', 'S', 'N', 'P' };
constexpr u32 SNAPSHOT_VERSION = 1;
constexpr size_t SNAPSHOT_HEADER_SIZE = 32;
// No state file kasou writes comes near this; a larger one is refused before it is read.
constexpr u64 SNAPSHOT_MAX_STATE_SIZE = 256 * 1024 * 1024;

std::vector<u8> encode_snapshot_state(SnapshotState const& state);
// Checks the header, the version, both checksums, every section's framing and every length,
// count and value, then that the parts agree with each other (the vCPU count and memory size with
// the configuration). One error, prefixed "snapshot state file: ", names the first problem.
ErrorOr<SnapshotState> decode_snapshot_state(std::span<u8 const> file);

} // namespace kasou::vmm
