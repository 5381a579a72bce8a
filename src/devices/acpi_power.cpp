#include "devices/acpi_power.h"

#include <algorithm>

namespace kasou::devices {

namespace {

// Sleep control register fields (ACPI 6.5, 4.8.3.7, table 4.19).
constexpr u8 SLP_TYP_SHIFT = 2;
constexpr u8 SLP_TYP_MASK = 0x7;
constexpr u8 SLP_EN = 1u << 5;

} // namespace

void AcpiPowerControl::read(u64, std::span<u8> data)
{
    std::fill(data.begin(), data.end(), 0);
}

void AcpiPowerControl::write(u64 offset, std::span<u8 const> data)
{
    if (data.empty())
        return;
    u8 value = data[0];
    switch (offset) {
    case SLEEP_CONTROL - PORT:
        if ((value & SLP_EN) && ((value >> SLP_TYP_SHIFT) & SLP_TYP_MASK) == S5_SLEEP_TYPE)
            m_on_power_off();
        return;
    case RESET - PORT:
        if (value == RESET_VALUE)
            m_on_reset();
        return;
    default:
        return;
    }
}

} // namespace kasou::devices
