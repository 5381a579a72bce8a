#include <cstring>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/event_fd.h"
#include "base/sys_file.h"
#include "base/sys_memory.h"
#include "io_test_support.h"
#include "storage/io/raw_file_device.h"
#include "test_driver.h"
#include "vhost_user/blk_export.h"
#include "vhost_user/frontend_connection.h"
#include "vhost_user/message.h"
#include "virtio/blk/blk_request.h"
#include "virtio/virtio_device.h"

using namespace kasou;
using namespace kasou::test;
using namespace kasou::vhost_user;

namespace {

constexpr u64 MEMORY_SIZE = 4 << 20;
constexpr u64 DISK_SIZE = 1 << 20;
constexpr u16 QUEUE_SIZE = 16;

std::string socket_path()
{
    char const* dir = std::getenv("TMPDIR");
    return fmt::format("{}/kasou-vhost-test-{}.sock", dir && *dir ? dir : "/tmp", ::getpid());
}

// A front-end in this process: shared memory (a memfd, seen by the "guest" at 0), one ring driven
// by TestDriver, its kick and call eventfds, and the connection to the export.
class TestFrontend {
public:
    TestFrontend()
        : m_fd(MUST(sys::memfd_create("vhost-test", 0)))
    {
        MUST(sys::ftruncate(m_fd.get(), MEMORY_SIZE));
        std::vector<memory::Region> regions;
        regions.push_back(memory::Region { 0, MUST(Mapping::of_fd(m_fd.get(), MEMORY_SIZE, PROT_READ | PROT_WRITE)) });
        m_memory.emplace(MUST(memory::GuestMemory::from_regions(std::move(regions))));
        m_driver.emplace(*m_memory, QUEUE_SIZE);
    }

    u64 user_address(u64 guest_physical) const { return reinterpret_cast<u64>(m_memory->regions()[0].mapping.data()) + guest_physical; }

    // Connects and sets the ring up, starting at `base`; the error of the first step the back-end refused.
    ErrorOr<void> attach(std::string const& path, u16 base = 0, u64 used_offset = 0)
    {
        m_connection.emplace(TRY(FrontendConnection::connect(path)));
        TRY(m_connection->negotiate(virtio::F_VERSION_1 | virtio::blk::F_FLUSH | virtio::blk::F_MQ));
        FrontendConnection::SharedRegion region { .guest_physical = 0, .size = MEMORY_SIZE, .user_address = user_address(0), .fd = m_fd.get(), .fd_offset = 0 };
        TRY(m_connection->set_memory(std::span(&region, 1)));
        auto const& layout = m_driver->layout();
        FrontendConnection::RingSetup ring { .size = QUEUE_SIZE, .descriptor = user_address(layout.descriptor_table),
            .available = user_address(layout.available_ring), .used = user_address(layout.used_ring) + used_offset, .base = base,
            .kick_fd = m_kick.fd(), .call_fd = m_call.fd() };
        return m_connection->start_ring(0, ring);
    }

    // One request of `type` at `sector` with `data` (OUT) or room for it (IN); the status byte.
    u8 request(u32 type, u64 sector, std::vector<u8>& data)
    {
        std::vector<u8> header(16, 0);
        std::memcpy(header.data(), &type, 4);
        std::memcpy(header.data() + 8, &sector, 8);
        u16 first = static_cast<u16>((m_driver->available_index() * 3) % QUEUE_SIZE);
        u16 status_slot = static_cast<u16>(first + 2);
        u64 header_at = m_driver->buffer(header);
        u64 data_at = m_driver->buffer(data);
        u64 status_at = m_driver->buffer({ 0xFF });
        m_driver->set_descriptor(first, { header_at, 16, NEXT, static_cast<u16>(first + 1) });
        m_driver->set_descriptor(first + 1, { data_at, static_cast<u32>(data.size()), static_cast<u16>(NEXT | (type == virtio::blk::TYPE_IN ? WRITE : 0)), status_slot });
        m_driver->set_descriptor(status_slot, { status_at, 1, WRITE, 0 });
        u16 used_before = m_driver->used_index();
        m_driver->make_available(first);
        MUST(m_kick.signal());
        pollfd wait { .fd = m_call.fd(), .events = POLLIN, .revents = 0 };
        EXPECT_EQ(::poll(&wait, 1, 10'000), 1) << "no completion signalled";
        (void)m_call.consume();
        EXPECT_EQ(m_driver->used_index(), static_cast<u16>(used_before + 1));
        if (type == virtio::blk::TYPE_IN)
            MUST(m_memory->read(data_at, data));
        return m_memory->read_object<u8>(status_at).value();
    }

    FrontendConnection& connection() { return *m_connection; }
    void disconnect() { m_connection.reset(); }
    TestDriver& driver() { return *m_driver; }

private:
    Fd m_fd;
    std::optional<memory::GuestMemory> m_memory;
    std::optional<TestDriver> m_driver;
    EventFd m_kick { EventFd::create().value() };
    EventFd m_call { EventFd::create().value() };
    std::optional<FrontendConnection> m_connection;
};

// Whether the back-end closed the connection (a read sees end of file within a few seconds).
bool closed_by_peer(int fd)
{
    pollfd wait { .fd = fd, .events = POLLIN, .revents = 0 };
    if (::poll(&wait, 1, 5000) != 1)
        return false;
    char byte;
    return ::recv(fd, &byte, 1, 0) == 0;
}

class VhostUserBlkExport : public ::testing::Test {
protected:
    void SetUp() override
    {
        m_disk = MUST(storage::RawFileDevice::open(m_file.path(), {}));
        BlkBackendOptions options;
        options.queues = 2;
        options.serial = "vhost-test";
        m_export = MUST(BlkExport::start(m_path, m_disk, options));
    }

    storage::testing::ScratchFile m_file { DISK_SIZE };
    std::string m_path { socket_path() };
    std::shared_ptr<storage::RawFileDevice> m_disk;
    std::unique_ptr<BlkExport> m_export;
};

} // namespace

TEST_F(VhostUserBlkExport, ServesWritesAndReadsOnTheFileAndItsConfig)
{
    TestFrontend frontend;
    ASSERT_TRUE(frontend.attach(m_path));
    EXPECT_EQ(frontend.connection().queue_count().value(), 2);
    auto config = frontend.connection().config(0, 60).value();
    u64 capacity;
    std::memcpy(&capacity, config.data(), 8);
    EXPECT_EQ(capacity, DISK_SIZE / 512);
    u16 queues;
    std::memcpy(&queues, config.data() + 0x22, 2);
    EXPECT_EQ(queues, 2);

    std::vector<u8> data(4096, 0xAB);
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_OUT, 8, data), virtio::blk::STATUS_OK);
    std::vector<u8> on_disk(4096);
    MUST(m_disk->read(8 * 512, on_disk));
    EXPECT_EQ(on_disk, data);

    MUST(m_disk->write(16 * 512, std::vector<u8>(512, 0x5A), false));
    std::vector<u8> read(512, 0);
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_IN, 16, read), virtio::blk::STATUS_OK);
    EXPECT_EQ(read, std::vector<u8>(512, 0x5A));

    // Past the end of the disk: an I/O error for that request, the ring goes on.
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_IN, DISK_SIZE / 512, read), virtio::blk::STATUS_IOERR);
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_IN, 16, read), virtio::blk::STATUS_OK);
}

TEST_F(VhostUserBlkExport, AFrontEndThatReconnectsGoesOnWhereItStopped)
{
    TestFrontend frontend;
    ASSERT_TRUE(frontend.attach(m_path));
    std::vector<u8> data(512, 0x11);
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_OUT, 0, data), virtio::blk::STATUS_OK);
    EXPECT_EQ(frontend.connection().stop_ring(0).value(), 1);
    frontend.disconnect();

    // A new connection (as after a front-end restart) picks the ring up at the base it gives.
    ASSERT_TRUE(frontend.attach(m_path, 1));
    std::vector<u8> read(512, 0);
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_IN, 0, read), virtio::blk::STATUS_OK);
    EXPECT_EQ(read, data);
    EXPECT_EQ(frontend.driver().used_index(), 2);
}

TEST_F(VhostUserBlkExport, AHostileFrontEndIsDisconnectedAndTheExportListensOn)
{
    {
        // A used ring outside the shared memory: refused when the ring would start.
        TestFrontend frontend;
        auto attached = frontend.attach(m_path, 0, MEMORY_SIZE);
        ASSERT_FALSE(attached);
        EXPECT_NE(attached.error().to_string().find("refused SET_VRING_ENABLE"), std::string::npos) << attached.error().to_string();
        EXPECT_TRUE(closed_by_peer(frontend.connection().fd()));
    }
    {
        // A request the protocol does not know.
        auto connection = MUST(FrontendConnection::connect(m_path));
        MUST(send_request(connection.fd(), static_cast<Request>(999), VERSION, {}, {}));
        EXPECT_TRUE(closed_by_peer(connection.fd()));
    }
    {
        // A memory region that reaches past the end of its file.
        auto connection = MUST(FrontendConnection::connect(m_path));
        MUST(connection.negotiate(virtio::F_VERSION_1));
        Fd small = MUST(sys::memfd_create("small", 0));
        MUST(sys::ftruncate(small.get(), 4096));
        FrontendConnection::SharedRegion region { .guest_physical = 0, .size = 1 << 20, .user_address = 0x10000, .fd = small.get(), .fd_offset = 0 };
        EXPECT_FALSE(connection.set_memory(std::span(&region, 1)));
        EXPECT_TRUE(closed_by_peer(connection.fd()));
    }
    {
        // A ring index beyond the queues, and a ring size beyond the limit.
        auto connection = MUST(FrontendConnection::connect(m_path));
        MUST(connection.negotiate(virtio::F_VERSION_1));
        VringState state { .index = 7, .num = 16 };
        MUST(send_request(connection.fd(), Request::SET_VRING_NUM, VERSION, std::span(reinterpret_cast<u8 const*>(&state), sizeof(state)), {}));
        EXPECT_TRUE(closed_by_peer(connection.fd()));
    }
    // Whatever came before, a well-behaved front-end is served.
    TestFrontend frontend;
    ASSERT_TRUE(frontend.attach(m_path));
    std::vector<u8> data(512, 0x77);
    EXPECT_EQ(frontend.request(virtio::blk::TYPE_OUT, 1, data), virtio::blk::STATUS_OK);
}
