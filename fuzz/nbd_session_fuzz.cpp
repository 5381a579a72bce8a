// libFuzzer target: the input is everything a client sends on one NBD connection (handshake,
// options, requests and payloads). The server side runs exactly as for a socket, over a raw image
// in a temporary file, and must end the connection cleanly whatever the bytes are.

#include <algorithm>
#include <fcntl.h>
#include <span>

#include <spdlog/spdlog.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/connection.h"

using namespace kasou;
using namespace kasou::storage;

namespace {

// Feeds the fuzz input in pieces of varying size (as a socket would) and drops the replies.
class InputTransport final : public nbd::Transport {
public:
    explicit InputTransport(std::span<u8 const> input)
        : m_input(input)
    {
    }
    ErrorOr<size_t> read_some(std::span<u8> buffer) override
    {
        if (m_stopped || m_position == m_input.size())
            return size_t { 0 };
        // Piece sizes come from the data itself, so short reads are explored too.
        size_t piece = 1 + (m_input[m_position] * 37u + m_reads++) % 4096;
        size_t n = std::min({ buffer.size(), piece, m_input.size() - m_position });
        std::copy_n(m_input.data() + m_position, n, buffer.data());
        m_position += n;
        return n;
    }
    ErrorOr<void> write_all(std::span<iovec const> vectors) override
    {
        for (auto const& vector : vectors) {
            // Touch every byte sent, so reading uninitialized or freed memory shows up.
            auto const* bytes = static_cast<u8 const*>(vector.iov_base);
            for (size_t i = 0; i < vector.iov_len; ++i)
                m_checksum += bytes[i];
        }
        return {};
    }
    void stop_reading() override { m_stopped = true; }
    void disconnect() override { m_stopped = true; }

private:
    std::span<u8 const> m_input;
    size_t m_position { 0 };
    size_t m_reads { 0 };
    bool m_stopped { false };
    u64 m_checksum { 0 };
};

std::vector<nbd::Export> const& exports()
{
    static std::vector<nbd::Export> const list = [] {
        auto fd = MUST(sys::open("/tmp", O_TMPFILE | O_RDWR, 0600));
        MUST(sys::ftruncate(fd.get(), 1 * MiB));
        std::vector<nbd::Export> made;
        made.push_back({ .name = "disk", .device = MUST(RawFileDevice::adopt(std::move(fd), "fuzz disk", {})) });
        auto read_only = MUST(sys::open("/tmp", O_TMPFILE | O_RDWR, 0600));
        MUST(sys::ftruncate(read_only.get(), 64 * KiB));
        made.push_back({ .name = "ro", .device = MUST(RawFileDevice::adopt(std::move(read_only), "fuzz ro", { .read_only = true })) });
        return made;
    }();
    return list;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    InputTransport transport({ data, size });
    // A budget below the largest payload, so refused and waited-for charges are reached too.
    static nbd::MemoryBudget budget(1 * MiB);
    nbd::ConnectionMonitor monitor;
    nbd::serve_connection(transport, exports(), { .max_workers = 1, .budget = budget, .monitor = monitor }, "fuzz");
    return 0;
}
