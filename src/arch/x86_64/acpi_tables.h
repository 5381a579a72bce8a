#pragma once

#include <optional>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

// The I/O ports of the power-management device the FADT points at (a hardware-reduced ACPI
// platform's sleep control and status registers and its reset register, ACPI 6.5, 4.8.3.7 and
// 4.8.3.6), and the values that mean S5 and reset. The VMM wires a device at the same ports.
struct AcpiPowerPorts {
    u16 sleep_control { 0 };
    u16 sleep_status { 0 };
    u16 reset { 0 };
    u8 reset_value { 0 };
    u8 s5_sleep_type { 0 }; // SLP_TYP the DSDT's _S5 object gives
};

// PCI bus 0 as the guest should find it: configuration through ports 0xCF8-0xCFF and ECAM,
// BARs in one 32-bit memory window.
struct AcpiPciHost {
    u64 ecam { 0 };
    u32 window_base { 0 };
    u32 window_size { 0 };
};

struct AcpiConfig {
    u32 cpus { 1 };
    AcpiPowerPorts power;
    std::optional<AcpiPciHost> pci;
};

// Offsets of each table inside the blob build_acpi_tables() returns.
struct AcpiTableLayout {
    std::vector<u8> bytes;
    u64 rsdp { 0 };
    u64 xsdt { 0 };
    u64 fadt { 0 };
    u64 madt { 0 };
    u64 dsdt { 0 };
    u64 mcfg { 0 }; // 0 without PCI
};

// Builds kasou's ACPI tables as one blob meant to sit at guest-physical `base`: RSDP (revision 2,
// pointing at the XSDT), XSDT (FADT, MADT and, with config.pci, MCFG for ECAM on bus 0), FADT (revision 6, hardware-reduced, sleep control and
// status registers and a reset register at `config.power`, pointing at the DSDT), MADT (one enabled
// x2APIC entry per vCPU with x2APIC ID = ACPI UID = index, the IOAPIC at 0xFEC00000 and the ISA
// IRQ 0 -> GSI 2 override), and DSDT (COM1 as PNP0501 at 0x3F8, IRQ 4; the CMOS RTC as PNP0B00 at
// 0x70, IRQ 8; \_S5; and, with config.pci, a PCI Express host bridge PCI0 whose _CRS gives bus 0,
// the configuration ports, the rest of the I/O space and the BAR window). Every table's checksum
// (and the RSDP's two) sums to zero. A pure function of its inputs.
AcpiTableLayout build_acpi_tables(u64 base, AcpiConfig const& config);

// Writes the tables at boot_layout::ACPI_TABLES and returns the RSDP's guest-physical address.
// Refuses a table set larger than the area reserved for it.
ErrorOr<u64> write_acpi_tables(memory::GuestMemory const& memory, AcpiConfig const& config);

} // namespace kasou::arch::x86_64
