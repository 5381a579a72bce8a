#pragma once

#include <cstddef>
#include <cstdint>

#include "base/types.h"

namespace kasou::fuzz {

// Reads a fuzzer's input as a stream of bytes, zeros once it runs out.
class FuzzInput {
public:
    FuzzInput(uint8_t const* data, size_t size)
        : m_data(data)
        , m_size(size)
    {
    }
    bool empty() const { return m_offset >= m_size; }
    u8 byte() { return empty() ? 0 : m_data[m_offset++]; }
    u32 word()
    {
        u32 value = 0;
        for (int i = 0; i < 4; ++i)
            value |= static_cast<u32>(byte()) << (8 * i);
        return value;
    }

private:
    uint8_t const* m_data;
    size_t m_size;
    size_t m_offset { 0 };
};

} // namespace kasou::fuzz
