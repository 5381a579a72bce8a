#pragma once

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "bus/io_bus.h"
#include "engine/vm.h"
#include "memory/guest_memory.h"
#include "pci/pci_bus.h"
#include "storage/nbd/served_pool.h"
#include "virtio/pci_transport.h"
#include "vmm/device_specs.h"
#include "vmm/gsi_routing.h"
#include "vmm/ioeventfd_router.h"

namespace kasou::vmm {

// Where the PCI bus lives in guest-physical space: BARs are assigned from the first part of the
// MMIO hole, ECAM (bus 0 only) sits above it, clear of the IOAPIC and LAPIC pages.
constexpr u64 PCI_BAR_WINDOW = 0xC000'0000;
constexpr u64 PCI_BAR_WINDOW_SIZE = 0x2000'0000;
constexpr u64 PCI_ECAM = 0xE800'0000;

// The machine's PCI bus with its virtio devices: the disks (raw files, NBD exports, or pool volumes
// reached through the process serving their pool, with a lease on each pool for the machine's
// life), the entropy device, their MSI-X routes
// and notification routes. Built before the buses freeze; attach() puts it on them.
class PciDevices {
public:
    struct Options {
        std::vector<DiskSpec> disks;
        bool entropy { true };
        std::string state_dir; // where pool volumes are looked up
        std::vector<NetSpec> nets;
        std::optional<VsockSpec> vsock;
        // A virtio console on these descriptors (owned by the caller, outliving the devices).
        std::optional<std::pair<int, int>> console_fds; // input, output
        // How long each device's I/O thread polls for the next request at most (0: never).
        std::chrono::nanoseconds io_poll { virtio::AdaptivePoll::DEFAULT_MAXIMUM };
    };

    static ErrorOr<std::unique_ptr<PciDevices>> create(engine::Vm& vm, memory::GuestMemory const& memory, GsiRouting& routing,
        Options const& options);

    // Inserts the configuration ports, ECAM and BAR window into the buses. Each queue's notification
    // address becomes a KVM ioeventfd while its function has memory decoding on, following BAR moves.
    ErrorOr<void> attach(bus::IoBus& pio, bus::IoBus& mmio);
    size_t device_count() const { return m_transports.size(); }
    // Parks every device's I/O thread with its requests answered / lets them go on (while no
    // vCPU runs; see virtio::PciTransport::pause).
    void pause();
    void resume();

private:
    PciDevices() = default;
    ErrorOr<void> add(engine::Vm& vm, memory::GuestMemory const& memory, GsiRouting& routing, std::chrono::nanoseconds io_poll,
        std::shared_ptr<virtio::VirtioDevice> device);

    std::unique_ptr<IoeventfdRouter> m_router; // declared first: outlives the transports (here and on the bus)
    pci::PciBus m_bus { PCI_BAR_WINDOW, PCI_BAR_WINDOW_SIZE };
    std::map<std::string, storage::nbd::PoolLease> m_pools; // outlive the disks (declared before the transports)
    std::vector<std::unique_ptr<IrqfdMsiSink>> m_sinks;
    std::vector<std::shared_ptr<virtio::PciTransport>> m_transports;
};

} // namespace kasou::vmm
