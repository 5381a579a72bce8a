#pragma once

#include <chrono>
#include <functional>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// A port the guest writes to when it reaches a point worth timing (the idea of Firecracker's boot
// timer): each write reports the byte written and the time since kasou started, through `report`.
class BootTimer final : public bus::BusDevice {
public:
    static constexpr u64 PORT = 0x440;
    using Clock = std::chrono::steady_clock;
    using ReportFunction = std::function<void(u8 marker, Clock::duration since_start)>;

    BootTimer(Clock::time_point start, ReportFunction report)
        : m_start(start)
        , m_report(std::move(report))
    {
    }

    void read(u64, std::span<u8> data) override;
    void write(u64, std::span<u8 const> data) override;

private:
    Clock::time_point m_start;
    ReportFunction m_report;
};

} // namespace kasou::devices
