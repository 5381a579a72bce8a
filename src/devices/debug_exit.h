#pragma once

#include <functional>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// QEMU's isa-debug-exit (iobase 0xf4, iosize 4): a guest write of value v asks the monitor to end with
// status (v << 1) | 1, so test guests run unchanged under QEMU and kasou. Reads return all ones.
class DebugExit final : public bus::BusDevice {
public:
    static constexpr u64 PORT = 0xf4;
    static constexpr u64 PORT_COUNT = 4;

    explicit DebugExit(std::function<void(u32 value)> on_exit)
        : m_on_exit(std::move(on_exit))
    {
    }

    // The process exit status for a written value, truncated to 8 bits as exit(3) does.
    static int exit_status(u32 value) { return static_cast<int>(((value << 1) | 1) & 0xFF); }

    void read(u64, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;

private:
    std::function<void(u32)> m_on_exit;
};

} // namespace kasou::devices
