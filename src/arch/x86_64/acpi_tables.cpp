#include "arch/x86_64/acpi_tables.h"

#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "arch/x86_64/aml.h"
#include "arch/x86_64/boot_layout.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

namespace {

constexpr std::string_view OEM_ID = "KASOU ";     // 6 characters
constexpr std::string_view OEM_TABLE_ID = "KASOUVM "; // 8 characters
constexpr std::string_view CREATOR_ID = "KASO";
constexpr u32 OEM_REVISION = 1;
constexpr u32 CREATOR_REVISION = 1;
constexpr u64 HEADER_SIZE = 36; // ACPI 6.5, 5.2.6 "System Description Table Header"
constexpr u64 TABLE_ALIGNMENT = 16;

// FADT (ACPI 6.5, 5.2.9): revision 6.5, 276 bytes.
constexpr u8 FADT_REVISION = 6;
constexpr u8 FADT_MINOR_REVISION = 5;
constexpr u64 FADT_SIZE = 276;
constexpr u64 FADT_DSDT = 40;
constexpr u64 FADT_FLAGS = 112;
constexpr u64 FADT_RESET_REG = 116;
constexpr u64 FADT_RESET_VALUE = 128;
constexpr u64 FADT_MINOR_VERSION = 131;
constexpr u64 FADT_X_DSDT = 140;
constexpr u64 FADT_SLEEP_CONTROL_REG = 244;
constexpr u64 FADT_SLEEP_STATUS_REG = 256;
constexpr u64 FADT_HYPERVISOR_VENDOR = 268;
constexpr u32 FADT_RESET_REG_SUP = 1u << 10;
constexpr u32 FADT_HW_REDUCED_ACPI = 1u << 20;

// Generic Address Structure (ACPI 6.5, 5.2.3.2).
constexpr u8 GAS_SYSTEM_IO = 1;
constexpr u8 GAS_ACCESS_BYTE = 1;

// MADT (ACPI 6.5, 5.2.12).
constexpr u8 MADT_REVISION = 5;
constexpr u32 LOCAL_APIC_ADDRESS = 0xFEE0'0000;
constexpr u32 MADT_PCAT_COMPAT = 1u << 0;
constexpr u8 MADT_IO_APIC = 1;
constexpr u8 MADT_INTERRUPT_OVERRIDE = 2;
constexpr u8 MADT_LOCAL_X2APIC = 9;
constexpr u32 MADT_ENABLED = 1u << 0;
constexpr u32 IO_APIC_ADDRESS = 0xFEC0'0000;

// COM1, the CMOS RTC and the i8042 keyboard controller as every PC has them.
constexpr u16 COM1_PORT = 0x3F8;
constexpr u16 I8042_DATA_PORT = 0x60;
constexpr u16 I8042_COMMAND_PORT = 0x64;
constexpr u8 KEYBOARD_IRQ = 1;
constexpr u8 COM1_IRQ = 4;
constexpr u16 RTC_PORT = 0x70;
constexpr u8 RTC_IRQ = 8;
constexpr u16 PCI_CONFIG_PORT = 0xCF8;

// MCFG (PCI Firmware Specification 3.2, 4.1.2): header, 8 reserved bytes, one allocation per
// segment: ECAM base, segment, first and last bus, 4 reserved bytes.
constexpr u64 MCFG_SIZE = 36 + 8 + 16;

// Lays tables out one after the other in a buffer sized once up front (`capacity` must cover every
// table; the callers' sizes are fixed but for the MADT's per-vCPU entries), so nothing reallocates
// while offsets are handed out. finish_blob() trims the buffer to what was used.
class TableWriter {
public:
    TableWriter(std::vector<u8>& bytes, u64 capacity)
        : m_bytes(bytes)
    {
        m_bytes.assign(capacity, 0);
    }
    u64 start(u64 size)
    {
        u64 offset = (m_used + TABLE_ALIGNMENT - 1) & ~(TABLE_ALIGNMENT - 1);
        m_used = offset + size;
        return offset;
    }
    void finish_blob() { m_bytes.resize(m_used); }
    template<class T>
    void put(u64 offset, T value) { std::memcpy(m_bytes.data() + offset, &value, sizeof(T)); }
    void put_text(u64 offset, std::string_view text) { std::memcpy(m_bytes.data() + offset, text.data(), text.size()); }
    void put_bytes(u64 offset, std::vector<u8> const& bytes) { std::memcpy(m_bytes.data() + offset, bytes.data(), bytes.size()); }
    void append(u64 table, std::vector<u8> const& bytes)
    {
        put_bytes(m_used, bytes);
        m_used += bytes.size();
        put<u32>(table + 4, static_cast<u32>(m_used - table));
    }
    u8 checksum(u64 offset, u64 length) const
    {
        u8 sum = 0;
        for (u64 i = offset; i < offset + length; ++i)
            sum = static_cast<u8>(sum + m_bytes[i]);
        return static_cast<u8>(-sum);
    }
    // Header with a zero checksum; finish() sets it once the table is complete.
    u64 start_table(std::string_view signature, u64 size, u8 revision)
    {
        u64 table = start(size);
        put_text(table, signature);
        put<u32>(table + 4, static_cast<u32>(size));
        put<u8>(table + 8, revision);
        put_text(table + 10, OEM_ID);
        put_text(table + 16, OEM_TABLE_ID);
        put<u32>(table + 24, OEM_REVISION);
        put_text(table + 28, CREATOR_ID);
        put<u32>(table + 32, CREATOR_REVISION);
        return table;
    }
    void finish(u64 table)
    {
        u32 length;
        std::memcpy(&length, m_bytes.data() + table + 4, 4);
        put<u8>(table + 9, checksum(table, length));
    }
    void put_io_register(u64 offset, u16 port)
    {
        put<u8>(offset, GAS_SYSTEM_IO);
        put<u8>(offset + 1, 8); // register bit width
        put<u8>(offset + 2, 0); // bit offset
        put<u8>(offset + 3, GAS_ACCESS_BYTE);
        put<u64>(offset + 4, port);
    }

private:
    std::vector<u8>& m_bytes;
    u64 m_used { 0 };
};

std::vector<u8> dsdt_body(AcpiConfig const& config)
{
    using namespace aml;
    auto com1 = device("COM1",
        { name("_HID", eisa_id("PNP0501")), name("_UID", integer(1)),
            name("_CRS", resource_template({ io_port(COM1_PORT, COM1_PORT, 0, 8), irq_no_flags(COM1_IRQ) })) });
    // Described so a hardware-reduced OS, which sets up no legacy ISA interrupts, finds the RTC's IRQ.
    auto rtc = device("RTC",
        { name("_HID", eisa_id("PNP0B00")), name("_CRS", resource_template({ io_port(RTC_PORT, RTC_PORT, 1, 2), irq_no_flags(RTC_IRQ) })) });
    // The i8042's keyboard, as Firecracker describes it: without it a Linux guest on hardware-reduced
    // ACPI does not probe the controller, and Ctrl+Alt+Del sent through it goes unheard.
    auto keyboard = device("PS2K",
        { name("_HID", eisa_id("PNP0303")),
            name("_CRS",
                resource_template({ io_port(I8042_DATA_PORT, I8042_DATA_PORT, 1, 1), io_port(I8042_COMMAND_PORT, I8042_COMMAND_PORT, 1, 1),
                    irq_no_flags(KEYBOARD_IRQ) })) });
    std::vector<aml::Bytes> devices { com1, rtc, keyboard };
    if (config.pci) {
        u32 window_end = config.pci->window_base + (config.pci->window_size - 1);
        devices.push_back(device("PCI0",
            { name("_HID", eisa_id("PNP0A08")), name("_CID", eisa_id("PNP0A03")), name("_SEG", integer(0)), name("_BBN", integer(0)),
                name("_UID", integer(0)),
                name("_CRS",
                    resource_template({ word_address(AddressSpace::BusNumber, 0, 0), io_port(PCI_CONFIG_PORT, PCI_CONFIG_PORT, 1, 8),
                        word_address(AddressSpace::Io, 0, PCI_CONFIG_PORT - 1), word_address(AddressSpace::Io, PCI_CONFIG_PORT + 8, 0xFFFF),
                        dword_memory(config.pci->window_base, window_end) })) }));
    }
    auto s5 = name("_S5", package({ integer(config.power.s5_sleep_type), integer(config.power.s5_sleep_type), integer(0), integer(0) }));
    auto body = scope("\\_SB", devices);
    body.insert(body.end(), s5.begin(), s5.end());
    return body;
}

} // namespace

AcpiTableLayout build_acpi_tables(u64 base, AcpiConfig const& config)
{
    AcpiTableLayout layout;
    auto dsdt = dsdt_body(config);
    u64 madt_size = HEADER_SIZE + 8 + u64 { config.cpus } * 16 + 12 + 10;
    u64 all_tables = HEADER_SIZE + dsdt.size() + FADT_SIZE + madt_size + MCFG_SIZE + HEADER_SIZE + 24 + 36;
    TableWriter writer(layout.bytes, all_tables + 6 * TABLE_ALIGNMENT);

    // DSDT first, so every pointer below is known when its table is written.
    layout.dsdt = writer.start_table("DSDT", HEADER_SIZE, 2);
    writer.append(layout.dsdt, dsdt);
    writer.finish(layout.dsdt);

    layout.fadt = writer.start_table("FACP", FADT_SIZE, FADT_REVISION);
    writer.put<u32>(layout.fadt + FADT_DSDT, static_cast<u32>(base + layout.dsdt));
    writer.put<u64>(layout.fadt + FADT_X_DSDT, base + layout.dsdt);
    writer.put<u32>(layout.fadt + FADT_FLAGS, FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP);
    writer.put_io_register(layout.fadt + FADT_RESET_REG, config.power.reset);
    writer.put<u8>(layout.fadt + FADT_RESET_VALUE, config.power.reset_value);
    writer.put<u8>(layout.fadt + FADT_MINOR_VERSION, FADT_MINOR_REVISION);
    writer.put_io_register(layout.fadt + FADT_SLEEP_CONTROL_REG, config.power.sleep_control);
    writer.put_io_register(layout.fadt + FADT_SLEEP_STATUS_REG, config.power.sleep_status);
    writer.put_text(layout.fadt + FADT_HYPERVISOR_VENDOR, std::string_view("KASOU\0\0\0", 8));
    writer.finish(layout.fadt);

    layout.madt = writer.start_table("APIC", HEADER_SIZE + 8, MADT_REVISION);
    writer.put<u32>(layout.madt + HEADER_SIZE, LOCAL_APIC_ADDRESS);
    writer.put<u32>(layout.madt + HEADER_SIZE + 4, MADT_PCAT_COMPAT);
    for (u32 cpu = 0; cpu < config.cpus; ++cpu) {
        std::vector<u8> entry(16, 0);
        entry[0] = MADT_LOCAL_X2APIC;
        entry[1] = 16;
        std::memcpy(&entry[4], &cpu, 4);          // x2APIC ID
        std::memcpy(&entry[8], &MADT_ENABLED, 4); // flags
        std::memcpy(&entry[12], &cpu, 4);         // ACPI processor UID
        writer.append(layout.madt, entry);
    }
    std::vector<u8> io_apic(12, 0);
    io_apic[0] = MADT_IO_APIC;
    io_apic[1] = 12;
    std::memcpy(&io_apic[4], &IO_APIC_ADDRESS, 4); // ID 0, GSI base 0
    writer.append(layout.madt, io_apic);
    std::vector<u8> timer_override(10, 0);
    timer_override[0] = MADT_INTERRUPT_OVERRIDE;
    timer_override[1] = 10;
    timer_override[4] = 2; // ISA IRQ 0 (bus 0, source 0) is GSI 2, flags: conforming
    writer.append(layout.madt, timer_override);
    writer.finish(layout.madt);

    if (config.pci) {
        layout.mcfg = writer.start_table("MCFG", MCFG_SIZE, 1);
        writer.put<u64>(layout.mcfg + HEADER_SIZE + 8, config.pci->ecam);
        writer.put<u16>(layout.mcfg + HEADER_SIZE + 16, 0); // segment
        writer.put<u8>(layout.mcfg + HEADER_SIZE + 18, 0);  // first bus
        writer.put<u8>(layout.mcfg + HEADER_SIZE + 19, 0);  // last bus
        writer.finish(layout.mcfg);
    }

    u64 entries = config.pci ? 3 : 2;
    layout.xsdt = writer.start_table("XSDT", HEADER_SIZE + 8 * entries, 1);
    writer.put<u64>(layout.xsdt + HEADER_SIZE, base + layout.fadt);
    writer.put<u64>(layout.xsdt + HEADER_SIZE + 8, base + layout.madt);
    if (config.pci)
        writer.put<u64>(layout.xsdt + HEADER_SIZE + 16, base + layout.mcfg);
    writer.finish(layout.xsdt);

    // RSDP (ACPI 6.5, 5.2.5.3): 20-byte ACPI 1.0 part with its checksum, 36 bytes in all.
    layout.rsdp = writer.start(36);
    writer.put_text(layout.rsdp, "RSD PTR ");
    writer.put_text(layout.rsdp + 9, OEM_ID);
    writer.put<u8>(layout.rsdp + 15, 2);
    writer.put<u32>(layout.rsdp + 20, 36);
    writer.put<u64>(layout.rsdp + 24, base + layout.xsdt);
    writer.put<u8>(layout.rsdp + 8, writer.checksum(layout.rsdp, 20));
    writer.put<u8>(layout.rsdp + 32, writer.checksum(layout.rsdp, 36));
    writer.finish_blob();
    return layout;
}

ErrorOr<u64> write_acpi_tables(memory::GuestMemory const& memory, AcpiConfig const& config)
{
    auto layout = build_acpi_tables(boot_layout::ACPI_TABLES, config);
    if (layout.bytes.size() > boot_layout::ACPI_TABLES_END - boot_layout::ACPI_TABLES)
        return make_error(fmt::format("ACPI tables for {} vCPUs take {} bytes; only {} fit below 1 MiB", config.cpus, layout.bytes.size(),
            boot_layout::ACPI_TABLES_END - boot_layout::ACPI_TABLES));
    TRY(memory.write(boot_layout::ACPI_TABLES, layout.bytes));
    return boot_layout::ACPI_TABLES + layout.rsdp;
}

} // namespace kasou::arch::x86_64
