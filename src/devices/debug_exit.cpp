#include "devices/debug_exit.h"

#include <algorithm>

namespace kasou::devices {

void DebugExit::read(u64, std::span<u8> data)
{
    std::fill(data.begin(), data.end(), 0xFF);
}

void DebugExit::write(u64 offset, std::span<u8 const> data)
{
    u32 value = 0;
    for (size_t i = 0; i < data.size() && i < 4; ++i)
        value |= u32 { data[i] } << (8 * i);
    // A write to a later port of the range carries its bytes shifted, as on a real ISA bus.
    m_on_exit(value << (8 * std::min<u64>(offset, 3)));
}

} // namespace kasou::devices
