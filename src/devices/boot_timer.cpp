#include "devices/boot_timer.h"

#include <algorithm>

namespace kasou::devices {

void BootTimer::read(u64, std::span<u8> data)
{
    std::fill(data.begin(), data.end(), 0xFF);
}

void BootTimer::write(u64, std::span<u8 const> data)
{
    auto elapsed = Clock::now() - m_start;
    m_report(data.empty() ? 0 : data[0], elapsed);
}

} // namespace kasou::devices
