#include "vmm/pci_devices.h"

#include <fmt/format.h>

#include "base/try.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/client_device.h"
#include "virtio/blk/blk_device.h"
#include "virtio/console/console_device.h"
#include "virtio/net/mac_address.h"
#include "virtio/net/net_device.h"
#include "virtio/rng/entropy_device.h"
#include "virtio/vsock/vsock_device.h"

namespace kasou::vmm {

namespace {

// The program started as `kasou pool serve POOL --auto` when a pool has no server: this one (the
// VMM runs inside the kasou binary).
constexpr char const* KASOU_BINARY = "/proc/self/exe";

ErrorOr<std::shared_ptr<storage::BlockDevice>> open_raw_disk(DiskSpec const& spec)
{
    storage::RawFileOptions options;
    options.read_only = spec.read_only;
    options.engine = storage::IoEngineKind::Uring;
    auto disk = TRY(storage::RawFileDevice::open(spec.path, options).map_error(
        [&](Error const& error) { return error.with_prefix(fmt::format("--disk {}", spec.path)); }));
    return std::shared_ptr<storage::BlockDevice>(std::move(disk));
}

ErrorOr<std::shared_ptr<storage::BlockDevice>> open_nbd_disk(DiskSpec const& spec)
{
    auto prefixed = [&](Error const& error) { return error.with_prefix(fmt::format("--disk nbd:{}", spec.path)); };
    auto uri = TRY(storage::nbd::NbdUri::parse(spec.path).map_error(prefixed));
    return std::shared_ptr<storage::BlockDevice>(TRY(storage::nbd::NbdClientDevice::connect(uri).map_error(prefixed)));
}

} // namespace

ErrorOr<std::unique_ptr<PciDevices>> PciDevices::create(engine::Vm& vm, memory::GuestMemory const& memory, GsiRouting& routing,
    Options const& options)
{
    std::unique_ptr<PciDevices> devices(new PciDevices());
    devices->m_router = std::make_unique<IoeventfdRouter>(vm);
    for (auto const& spec : options.disks) {
        std::shared_ptr<storage::BlockDevice> disk;
        if (spec.kind == DiskSpec::Kind::RawFile) {
            disk = TRY(open_raw_disk(spec));
        } else if (spec.kind == DiskSpec::Kind::Nbd) {
            disk = TRY(open_nbd_disk(spec));
        } else {
            // The transport seam for pool volumes (docs/storage.md, "Volumes shared by many VMs"):
            // the volume comes from the process serving its pool, today over NBD.
            if (!devices->m_pools.contains(spec.pool))
                devices->m_pools.emplace(spec.pool, TRY(storage::nbd::PoolLease::take(options.state_dir, spec.pool)));
            disk = TRY(storage::nbd::attach_served_volume(options.state_dir, spec.pool, spec.volume, KASOU_BINARY)
                           .map_error([&](Error const& error) { return error.with_prefix(fmt::format("--disk vol:{}/{}", spec.pool, spec.volume)); }));
        }
        virtio::blk::BlkOptions blk { spec.read_only, spec.serial, spec.queues, 256 };
        TRY(devices->add(vm, memory, routing, options.io_poll, std::make_shared<virtio::blk::BlkDevice>(std::move(disk), blk)));
    }
    for (auto const& spec : options.nets) {
        virtio::net::NetOptions net;
        net.tap_name = spec.tap;
        if (!spec.mac.empty())
            net.mac = TRY(virtio::net::parse_mac(spec.mac).map_error([&](Error const& e) { return e.with_prefix("--net mac"); }));
        auto device = TRY(virtio::net::NetDevice::create(std::move(net)).map_error(
            [&](Error const& e) { return e.with_prefix(fmt::format("--net tap={}", spec.tap)); }));
        TRY(devices->add(vm, memory, routing, options.io_poll, std::move(device)));
    }
    if (options.console_fds) {
        virtio::console::ConsoleOptions console { options.console_fds->first, options.console_fds->second, 0, 0 };
        TRY(devices->add(vm, memory, routing, options.io_poll, TRY(virtio::console::ConsoleDevice::create(console))));
    }
    if (options.vsock) {
        virtio::vsock::VsockOptions vsock { options.vsock->guest_cid, options.vsock->uds_path };
        if (options.vsock->max_connections)
            vsock.max_connections = options.vsock->max_connections;
        auto device = TRY(virtio::vsock::VsockDevice::create(vsock).map_error([](Error const& e) { return e.with_prefix("--vsock"); }));
        TRY(devices->add(vm, memory, routing, options.io_poll, std::move(device)));
    }
    if (options.entropy)
        TRY(devices->add(vm, memory, routing, options.io_poll, std::make_shared<virtio::EntropyDevice>()));
    return devices;
}

ErrorOr<void> PciDevices::add(engine::Vm& vm, memory::GuestMemory const& memory, GsiRouting& routing, std::chrono::nanoseconds io_poll,
    std::shared_ptr<virtio::VirtioDevice> device)
{
    u16 vectors = static_cast<u16>(device->queue_count() + 1);
    auto sink = TRY(IrqfdMsiSink::create(vm, routing, vectors));
    std::shared_ptr<virtio::PciTransport> transport = TRY(virtio::PciTransport::create(memory, std::move(device), *sink, m_router.get(), io_poll));
    TRY(m_bus.add(transport));
    m_sinks.push_back(std::move(sink));
    m_transports.push_back(std::move(transport));
    return {};
}

ErrorOr<void> PciDevices::attach(bus::IoBus& pio, bus::IoBus& mmio)
{
    TRY(pio.insert(m_bus.config_ports(), pci::PciBus::CONFIG_PORT, pci::PciBus::CONFIG_PORT_COUNT, "PCI configuration ports"));
    TRY(mmio.insert(m_bus.ecam(), PCI_ECAM, pci::PciBus::ECAM_BUS_SIZE, "PCI ECAM"));
    TRY(mmio.insert(m_bus.bar_window(), m_bus.window_base(), m_bus.window_size(), "PCI BAR window"));
    // Routes for BARs whose memory decoding is already on; later ones follow configuration writes.
    for (auto const& transport : m_transports)
        transport->route_notifications();
    return {};
}

void PciDevices::pause()
{
    for (auto& transport : m_transports)
        transport->pause();
}

void PciDevices::resume()
{
    for (auto& transport : m_transports)
        transport->resume();
}

} // namespace kasou::vmm
