#pragma once

#include <array>
#include <ctime>
#include <functional>
#include <mutex>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// A minimal MC146818 CMOS RTC at ports 0x70 (index, bit 7 = NMI mask) and 0x71 (data): the time of
// day in BCD, 24-hour mode, from the host clock at each read; status registers that never report an
// update in progress; and the PC memory-size bytes firmware would leave (base, extended, above
// 16 MiB and above 4 GiB). Writes to the time are accepted and ignored; other bytes are kept.
class CmosRtc final : public bus::BusDevice {
public:
    static constexpr u64 PORT = 0x70;
    static constexpr u64 PORT_COUNT = 2;
    using NowFunction = std::function<std::time_t()>;

    // low_memory_end: end of RAM below 4 GiB; high_memory_size: bytes of RAM from 4 GiB.
    // The index register and the 128 bytes of CMOS, for snapshots (the time registers are read
    // from the host clock, so a restored guest sees the time of day go on).
    struct State {
        u8 index { 0 };
        std::array<u8, 128> bytes {};
        bool operator==(State const&) const = default;
    };

    CmosRtc(u64 low_memory_end, u64 high_memory_size, NowFunction now);

    State state();
    void set_state(State const& state);

    void read(u64 offset, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;

private:
    u8 read_data();

    std::mutex m_lock;
    NowFunction m_now;
    u8 m_index { 0 };
    std::array<u8, 128> m_bytes {};
};

} // namespace kasou::devices
