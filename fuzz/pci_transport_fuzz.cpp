// Plays a hostile driver against kasou's PCI bus with real virtio devices behind it (virtio-rng, and
// virtio-blk over a temporary raw file), their I/O threads running: sequences of reads and writes
// of every size at any offset of configuration space (CF8/CFC and ECAM: BARs and their sizing,
// the command register, the MSI-X capability), of the BARs (common configuration, ISR, device
// configuration, notifications, MSI-X table and PBA) and of guest RAM, where queues are laid out
// and requests made. Besides the sanitizers' checks: the device status never holds a bit without
// the bits before it (virtio 1.2, 3.1.1), and the notification routes (kept as KVM keeps
// ioeventfds: one per address) follow each BAR while memory decoding is on.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/try.h"
#include "pci/pci_bus.h"
#include "storage/io/raw_file_device.h"
#include "virtio/blk/blk_device.h"
#include "virtio/pci_transport.h"
#include "virtio/rng/entropy_device.h"

namespace {

using namespace kasou;
using virtio::PciTransport;

constexpr u64 WINDOW = 0xC000'0000;
constexpr u64 WINDOW_SIZE = 0x10'0000;
constexpr u64 RAM_SIZE = 1 * MiB;
constexpr u64 RAM_TOUCHED = 64 * KiB; // the part of RAM inputs write, cleared before each input
constexpr u64 RINGS = 0x1000;         // queue q of device d: rings at RINGS + (2d + q) * 0x1000
constexpr u64 BUFFERS = 0x8000;       // request buffers from here to RAM_TOUCHED
constexpr u16 QUEUE_SIZE = 8;
constexpr u64 COMMON_STATUS = 0x14;
constexpr u8 ORDER[] = { PciTransport::STATUS_ACKNOWLEDGE, PciTransport::STATUS_DRIVER, PciTransport::STATUS_FEATURES_OK,
    PciTransport::STATUS_DRIVER_OK };

// As KVM keeps ioeventfds: one per address; a second at the same address, or removing one that is
// not there, is refused.
class FuzzRouter final : public virtio::NotifyRouter {
public:
    ErrorOr<void> route(u64 address, int fd) override
    {
        if (!m_routes.emplace(address, fd).second)
            return make_errno_error(EEXIST, "KVM_IOEVENTFD");
        return {};
    }
    ErrorOr<void> unroute(u64 address, int fd) override
    {
        auto found = m_routes.find(address);
        if (found == m_routes.end() || found->second != fd)
            return make_errno_error(ENOENT, "KVM_IOEVENTFD (deassign)");
        m_routes.erase(found);
        return {};
    }
    // The eventfd a write at `address` signals inside the kernel, if any.
    std::optional<int> at(u64 address) const
    {
        auto found = m_routes.find(address);
        return found == m_routes.end() ? std::nullopt : std::optional<int>(found->second);
    }

private:
    std::map<u64, int> m_routes;
};

struct NullSink final : pci::MsiSink {
    void route_changed(u16, u64, u32) override { }
    void deliver(u16) override { }
};

class Input {
public:
    Input(u8 const* data, size_t size)
        : m_data(data)
        , m_size(size)
    {
    }
    bool done() const { return m_at >= m_size; }
    template<class T>
    T take()
    {
        T value {};
        size_t n = std::min(sizeof(T), m_size - std::min(m_at, m_size));
        std::memcpy(&value, m_data + m_at, n);
        m_at += sizeof(T);
        return value;
    }

private:
    u8 const* m_data;
    size_t m_size;
    size_t m_at { 0 };
};

memory::GuestMemory const& ram()
{
    static auto memory = MUST(memory::GuestMemory::create(RAM_SIZE));
    return memory;
}

std::shared_ptr<storage::BlockDevice> disk()
{
    static std::shared_ptr<storage::BlockDevice> disk = [] {
        char path[] = "/tmp/kasou-pci-fuzz-XXXXXX";
        int fd = ::mkstemp(path);
        if (fd < 0 || ::ftruncate(fd, 1 * MiB) != 0)
            std::abort();
        ::close(fd);
        auto opened = MUST(storage::RawFileDevice::open(path, {}));
        ::unlink(path);
        return std::shared_ptr<storage::BlockDevice>(std::move(opened));
    }();
    return disk;
}

// One machine's PCI side, built afresh for every input (the transports' destructors stop their
// I/O threads, so each input starts from reset devices).
struct Machine {
    FuzzRouter router; // outlives the transports
    NullSink sink;
    pci::PciBus bus { WINDOW, WINDOW_SIZE };
    std::vector<std::shared_ptr<PciTransport>> transports;
    std::vector<u8> numbers; // each transport's device number on the bus
    std::shared_ptr<bus::BusDevice> ports = bus.config_ports();
    std::shared_ptr<bus::BusDevice> ecam = bus.ecam();
    std::shared_ptr<bus::BusDevice> window = bus.bar_window();

    Machine()
    {
        add(std::make_shared<virtio::EntropyDevice>());
        add(std::make_shared<virtio::blk::BlkDevice>(disk(), virtio::blk::BlkOptions { false, "fuzz", 2, 64 }));
    }
    void add(std::shared_ptr<virtio::VirtioDevice> device)
    {
        auto transport = std::shared_ptr<PciTransport>(MUST(PciTransport::create(ram(), std::move(device), sink, &router)));
        u8 number = MUST(bus.add(transport));
        transports.push_back(transport);
        numbers.push_back(number);
        // Memory decoding on, as firmware leaves it.
        bus.config_write(number, 0, pci::ConfigSpace::COMMAND, 2, pci::ConfigSpace::COMMAND_MEMORY | pci::ConfigSpace::COMMAND_BUS_MASTER);
    }

    // A guest access at absolute `address`: a write a KVM ioeventfd covers never leaves the kernel.
    void mmio_write(u64 address, std::span<u8 const> data)
    {
        if (auto fd = router.at(address)) {
            (void)::eventfd_write(*fd, 1);
            return;
        }
        window->write(address - WINDOW, data);
    }
    void mmio_read(u64 address, std::span<u8> data) { window->read(address - WINDOW, data); }
    void bar_write(PciTransport& transport, u64 offset, u64 value, size_t size)
    {
        mmio_write(transport.config().bar_address(0) + offset, std::span(reinterpret_cast<u8 const*>(&value), size));
    }
};

// The driver's side of a whole initialization (virtio 1.2, 3.1.1) with queues of QUEUE_SIZE laid
// out in RAM, so that inputs reach DRIVER_OK and running queues without spelling it out.
void bring_up(Machine& machine, PciTransport& transport, u8 device, u32 features_high, u32 features_low)
{
    machine.bar_write(transport, COMMON_STATUS, 0, 1);
    machine.bar_write(transport, COMMON_STATUS, 1, 1);
    machine.bar_write(transport, COMMON_STATUS, 3, 1);
    machine.bar_write(transport, 0x08, 0, 4);
    machine.bar_write(transport, 0x0C, features_low, 4);
    machine.bar_write(transport, 0x08, 1, 4);
    machine.bar_write(transport, 0x0C, features_high | 1, 4); // VERSION_1
    machine.bar_write(transport, COMMON_STATUS, 0xB, 1);
    machine.bar_write(transport, 0x10, 0, 2);
    for (u16 queue = 0; queue < transport.queue_count(); ++queue) {
        u64 rings = RINGS + (2u * device + queue) * 0x1000;
        machine.bar_write(transport, 0x16, queue, 2);
        machine.bar_write(transport, 0x18, QUEUE_SIZE, 2);
        machine.bar_write(transport, 0x1A, queue + 1u, 2);
        machine.bar_write(transport, 0x20, rings, 4);
        machine.bar_write(transport, 0x28, rings + 0x100, 4);
        machine.bar_write(transport, 0x30, rings + 0x200, 4);
        machine.bar_write(transport, 0x1C, 1, 2);
    }
    machine.bar_write(transport, COMMON_STATUS, 0xF, 1);
}

// Makes descriptor `head` of a queue available with one buffer the input describes, and notifies.
void request(Machine& machine, PciTransport& transport, u8 device, Input& input)
{
    u16 queue = static_cast<u16>(input.take<u8>() % transport.queue_count());
    u64 rings = RINGS + (2u * device + queue) * 0x1000;
    u16 head = input.take<u8>() % QUEUE_SIZE;
    struct {
        u64 address;
        u32 length;
        u16 flags;
        u16 next;
    } descriptor { BUFFERS + input.take<u16>() % (RAM_TOUCHED - BUFFERS), input.take<u16>() % 0x1000u, static_cast<u16>(input.take<u8>() & 7),
        static_cast<u16>(input.take<u8>() % QUEUE_SIZE) };
    (void)ram().write_object(rings + 16ull * head, descriptor);
    u16 available = ram().read_object<u16>(rings + 0x100 + 2).value_or(0);
    (void)ram().write_object<u16>(rings + 0x100 + 4 + 2ull * (available % QUEUE_SIZE), head);
    (void)ram().write_object<u16>(rings + 0x100 + 2, static_cast<u16>(available + 1));
    machine.bar_write(transport, PciTransport::notify_offset(queue), queue, 2);
}

// Where in a BAR an access goes: mostly inside one of the transport's regions.
u64 bar_offset(Input& input)
{
    constexpr u64 regions[] = { PciTransport::COMMON_OFFSET, PciTransport::ISR_OFFSET, PciTransport::DEVICE_OFFSET,
        PciTransport::NOTIFY_OFFSET, PciTransport::MSIX_TABLE_OFFSET, PciTransport::MSIX_PBA_OFFSET };
    u8 region = input.take<u8>();
    u16 offset = input.take<u16>();
    if (region % 8 >= std::size(regions))
        return offset; // anywhere in the BAR or past its end
    return regions[region % 8] + offset % 0x48;
}

void check(Machine const& machine)
{
    for (auto const& transport : machine.transports) {
        u8 status = transport->status();
        bool previous = true;
        for (u8 bit : ORDER) {
            if ((status & bit) && !previous)
                __builtin_trap(); // a status bit without the ones before it
            previous = status & bit;
        }
        auto& config = transport->config();
        std::optional<u64> expected;
        if (config.memory_enabled() && config.bar_address(0) != 0)
            expected = config.bar_address(0);
        if (transport->routed_base() != expected)
            __builtin_trap(); // notification routes left behind by a BAR move
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    static bool const quiet = (spdlog::set_level(spdlog::level::off), true);
    (void)quiet;
    auto touched = MUST(ram().span(0, RAM_TOUCHED));
    std::memset(touched.data(), 0, touched.size());
    Machine machine;
    Input input(data, size);
    for (int steps = 0; !input.done() && steps < 256; ++steps) {
        u8 op = input.take<u8>();
        u8 device = static_cast<u8>((op >> 4) % machine.transports.size());
        PciTransport& transport = *machine.transports[device];
        size_t access = 1 + input.take<u8>() % 8; // MMIO accesses of 1 to 8 bytes, as KVM splits them
        u64 value = input.take<u64>();
        switch (op % 8) {
        case 0: { // ECAM, any device number, any register
            u8 number = input.take<u8>() % 4;
            u16 reg = input.take<u16>() % pci::ConfigSpace::SIZE;
            u64 offset = (u64 { number } << 15) + reg;
            if (input.take<u8>() & 1)
                machine.ecam->write(offset, std::span(reinterpret_cast<u8 const*>(&value), std::min<size_t>(access, 4)));
            else {
                u8 out[8];
                machine.ecam->read(offset, std::span(out, access));
            }
            break;
        }
        case 1: { // configuration mechanism #1: CF8, then one of the data ports
            u32 address = input.take<u32>();
            machine.ports->write(0, std::span(reinterpret_cast<u8 const*>(&address), 4));
            u64 port = 4 + input.take<u8>() % 4;
            size_t port_size = size_t { 1 } << (input.take<u8>() % 3);
            if (input.take<u8>() & 1)
                machine.ports->write(port, std::span(reinterpret_cast<u8 const*>(&value), port_size));
            else {
                u8 out[4];
                machine.ports->read(port, std::span(out, port_size));
            }
            break;
        }
        case 2: // BAR-relative write
            machine.bar_write(transport, bar_offset(input), value, access);
            break;
        case 3: { // BAR-relative read
            u8 out[8];
            machine.mmio_read(transport.config().bar_address(0) + bar_offset(input), std::span(out, access));
            break;
        }
        case 4: { // bytes into guest RAM (rings, descriptors, buffers)
            u64 at = input.take<u16>() % RAM_TOUCHED;
            std::vector<u8> bytes(1 + input.take<u8>() % 64);
            for (auto& byte : bytes)
                byte = input.take<u8>();
            (void)ram().write(at, std::span(bytes.data(), std::min<u64>(bytes.size(), RAM_TOUCHED - at)));
            break;
        }
        case 5:
            bring_up(machine, transport, device, static_cast<u32>(value >> 32), static_cast<u32>(value));
            break;
        case 6:
            request(machine, transport, device, input);
            break;
        default: // a BAR move through ECAM, as a driver does: the low half, the high half
            machine.bus.config_write(machine.numbers[device], 0, 0x10, 4, static_cast<u32>(value));
            machine.bus.config_write(machine.numbers[device], 0, 0x14, 4, static_cast<u32>(value >> 32));
            break;
        }
        check(machine);
    }
    return 0;
}
