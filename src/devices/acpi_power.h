#pragma once

#include <functional>

#include "base/types.h"
#include "bus/bus_device.h"

namespace kasou::devices {

// The power-management registers of a hardware-reduced ACPI platform, as kasou's FADT describes
// them (ACPI 6.5, 4.8.3.7 "Sleep Control and Status Registers", 4.8.3.6 "Reset Register"): three
// byte-wide ports from PORT. Writing SLP_EN with SLP_TYP = S5_SLEEP_TYPE to the sleep control
// register powers the machine off; writing RESET_VALUE to the reset register resets it. The sleep
// status register reads WAK_STS clear (the machine never sleeps) and ignores writes, which only
// clear status bits. Other sleep types are ignored: kasou offers S5 only.
class AcpiPowerControl final : public bus::BusDevice {
public:
    static constexpr u16 PORT = 0x600;
    static constexpr u64 PORT_COUNT = 3;
    static constexpr u16 SLEEP_CONTROL = PORT;
    static constexpr u16 SLEEP_STATUS = PORT + 1;
    static constexpr u16 RESET = PORT + 2;
    static constexpr u8 S5_SLEEP_TYPE = 5;
    static constexpr u8 RESET_VALUE = 0x01;

    AcpiPowerControl(std::function<void()> on_power_off, std::function<void()> on_reset)
        : m_on_power_off(std::move(on_power_off))
        , m_on_reset(std::move(on_reset))
    {
    }

    void read(u64 offset, std::span<u8> data) override;
    void write(u64 offset, std::span<u8 const> data) override;

private:
    std::function<void()> m_on_power_off;
    std::function<void()> m_on_reset;
};

} // namespace kasou::devices
