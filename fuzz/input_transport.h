#pragma once

// The fuzz input as the byte stream of an NBD connection, shared by the server and client targets.

#include <algorithm>
#include <span>

#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// Feeds the fuzz input in pieces of varying size (as a socket would) and drops the replies.
class InputTransport final : public Transport {
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

} // namespace kasou::storage::nbd
