#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "arch/x86_64/acpi_tables.h"
#include "arch/x86_64/aml.h"
#include "arch/x86_64/boot_layout.h"

using namespace kasou;
using namespace kasou::arch::x86_64;

namespace {

constexpr u64 BASE = 0xE0000;

AcpiConfig config_for(u32 cpus)
{
    return { cpus, { 0x600, 0x601, 0x602, 0x01, 5 }, std::nullopt };
}

// The configuration kasou's machines use: with the PCI host bridge and ECAM.
AcpiConfig config_with_pci(u32 cpus)
{
    auto config = config_for(cpus);
    config.pci = AcpiPciHost { 0xE800'0000, 0xC000'0000, 0x2000'0000 };
    return config;
}

template<class T>
T at(std::vector<u8> const& bytes, u64 offset)
{
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

u8 sum(std::vector<u8> const& bytes, u64 offset, u64 length)
{
    u8 total = 0;
    for (u64 i = offset; i < offset + length; ++i)
        total = static_cast<u8>(total + bytes[i]);
    return total;
}

std::string signature(std::vector<u8> const& bytes, u64 offset) { return std::string(bytes.begin() + offset, bytes.begin() + offset + 4); }

std::vector<u8> table_bytes(AcpiTableLayout const& layout, u64 offset)
{
    u32 length = at<u32>(layout.bytes, offset + 4);
    return std::vector<u8>(layout.bytes.begin() + offset, layout.bytes.begin() + offset + length);
}

struct CommandResult {
    int status { -1 };
    std::string output;
};

CommandResult run(std::string const& command)
{
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe)
        return result;
    char buffer[4096];
    while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe))
        result.output.append(buffer, n);
    int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

} // namespace

TEST(AcpiTables, PointersSignaturesAndChecksums)
{
    auto layout = build_acpi_tables(BASE, config_for(2));
    auto const& bytes = layout.bytes;
    // RSDP: signature, both checksums, revision 2, XSDT address.
    EXPECT_EQ(std::string(bytes.begin() + layout.rsdp, bytes.begin() + layout.rsdp + 8), "RSD PTR ");
    EXPECT_EQ(sum(bytes, layout.rsdp, 20), 0);
    EXPECT_EQ(sum(bytes, layout.rsdp, 36), 0);
    EXPECT_EQ(at<u8>(bytes, layout.rsdp + 15), 2);
    EXPECT_EQ(layout.rsdp % 16, 0u) << "the RSDP is found on 16-byte boundaries";
    EXPECT_EQ(at<u64>(bytes, layout.rsdp + 24), BASE + layout.xsdt);

    // XSDT -> FADT, MADT; FADT -> DSDT.
    EXPECT_EQ(signature(bytes, layout.xsdt), "XSDT");
    EXPECT_EQ(at<u32>(bytes, layout.xsdt + 4), 36u + 16);
    EXPECT_EQ(at<u64>(bytes, layout.xsdt + 36), BASE + layout.fadt);
    EXPECT_EQ(at<u64>(bytes, layout.xsdt + 44), BASE + layout.madt);
    EXPECT_EQ(signature(bytes, layout.fadt), "FACP");
    EXPECT_EQ(signature(bytes, layout.madt), "APIC");
    EXPECT_EQ(signature(bytes, layout.dsdt), "DSDT");
    EXPECT_EQ(at<u64>(bytes, layout.fadt + 140), BASE + layout.dsdt);
    EXPECT_EQ(at<u32>(bytes, layout.fadt + 40), BASE + layout.dsdt);
    for (u64 table : { layout.xsdt, layout.fadt, layout.madt, layout.dsdt }) {
        EXPECT_EQ(sum(bytes, table, at<u32>(bytes, table + 4)), 0) << signature(bytes, table);
        EXPECT_LE(table + at<u32>(bytes, table + 4), bytes.size());
    }
    EXPECT_LE(bytes.size(), boot_layout::ACPI_TABLES_END - boot_layout::ACPI_TABLES);
}

TEST(AcpiTables, FadtIsHardwareReducedWithSleepAndResetRegisters)
{
    auto layout = build_acpi_tables(BASE, config_for(1));
    auto fadt = table_bytes(layout, layout.fadt);
    ASSERT_EQ(fadt.size(), 276u);
    EXPECT_EQ(fadt[8], 6) << "revision";
    EXPECT_EQ(fadt[131], 5) << "minor revision";
    u32 flags = at<u32>(fadt, 112);
    EXPECT_NE(flags & (1u << 20), 0u) << "HW_REDUCED_ACPI";
    EXPECT_NE(flags & (1u << 10), 0u) << "RESET_REG_SUP";
    // Generic addresses: system I/O, 8 bits, byte access, at the given ports.
    for (auto [offset, port] : { std::pair { 244, 0x600 }, { 256, 0x601 }, { 116, 0x602 } }) {
        EXPECT_EQ(fadt[offset], 1) << offset;
        EXPECT_EQ(fadt[offset + 1], 8) << offset;
        EXPECT_EQ(fadt[offset + 3], 1) << offset;
        EXPECT_EQ(at<u64>(fadt, offset + 4), static_cast<u64>(port)) << offset;
    }
    EXPECT_EQ(fadt[128], 0x01) << "reset value";
    EXPECT_EQ(at<u32>(fadt, 64), 0u) << "no PM1a control block on a hardware-reduced platform";
}

TEST(AcpiTables, MadtHasOneX2ApicPerCpuAndTheIoApic)
{
    for (u32 cpus : { 1u, 2u, 64u }) {
        auto layout = build_acpi_tables(BASE, config_for(cpus));
        auto madt = table_bytes(layout, layout.madt);
        EXPECT_EQ(at<u32>(madt, 36), 0xFEE0'0000u);
        u32 x2apics = 0;
        bool io_apic = false;
        bool timer_override = false;
        for (u64 offset = 44; offset < madt.size();) {
            u8 type = madt[offset];
            u8 length = madt[offset + 1];
            ASSERT_GT(length, 0);
            if (type == 9) {
                EXPECT_EQ(length, 16);
                EXPECT_EQ(at<u32>(madt, offset + 4), x2apics) << "x2APIC ID";
                EXPECT_EQ(at<u32>(madt, offset + 8), 1u) << "enabled";
                EXPECT_EQ(at<u32>(madt, offset + 12), x2apics) << "ACPI UID";
                ++x2apics;
            } else if (type == 1) {
                EXPECT_EQ(at<u32>(madt, offset + 4), 0xFEC0'0000u);
                EXPECT_EQ(at<u32>(madt, offset + 8), 0u);
                io_apic = true;
            } else if (type == 2) {
                EXPECT_EQ(madt[offset + 3], 0) << "ISA IRQ 0";
                EXPECT_EQ(at<u32>(madt, offset + 4), 2u) << "is GSI 2";
                timer_override = true;
            } else {
                ADD_FAILURE() << "unexpected MADT entry type " << int(type);
            }
            offset += length;
        }
        EXPECT_EQ(x2apics, cpus);
        EXPECT_TRUE(io_apic);
        EXPECT_TRUE(timer_override);
    }
}

TEST(AcpiTables, DsdtHoldsCom1RtcKeyboardAndS5)
{
    auto layout = build_acpi_tables(BASE, config_for(1));
    auto dsdt = table_bytes(layout, layout.dsdt);
    std::string body(dsdt.begin() + 36, dsdt.end());
    EXPECT_NE(body.find("\\_SB_"), std::string::npos);
    EXPECT_NE(body.find("COM1"), std::string::npos);
    EXPECT_NE(body.find(std::string("_HID\x0C\x41\xD0\x05\x01", 9)), std::string::npos) << "EISAID(\"PNP0501\")";
    EXPECT_NE(body.find(std::string("\x47\x01\xF8\x03\xF8\x03\x00\x08", 8)), std::string::npos) << "IO (Decode16, 0x3F8, 0x3F8, 0, 8)";
    EXPECT_NE(body.find(std::string("\x22\x10\x00", 3)), std::string::npos) << "IRQNoFlags () {4}";
    EXPECT_NE(body.find(std::string("RTC_\x08_HID\x0C\x41\xD0\x0B\x00", 14)), std::string::npos) << "Device (RTC) with EISAID(\"PNP0B00\")";
    EXPECT_NE(body.find(std::string("\x47\x01\x70\x00\x70\x00\x01\x02\x22\x00\x01", 11)), std::string::npos)
        << "IO (Decode16, 0x70, 0x70, 1, 2), IRQNoFlags () {8}";
    EXPECT_NE(body.find(std::string("PS2K\x08_HID\x0C\x41\xD0\x03\x03", 14)), std::string::npos) << "Device (PS2K) with EISAID(\"PNP0303\")";
    EXPECT_NE(body.find(std::string("\x47\x01\x60\x00\x60\x00\x01\x01\x47\x01\x64\x00\x64\x00\x01\x01\x22\x02\x00", 19)), std::string::npos)
        << "IO (Decode16, 0x60, 0x60, 1, 1), IO (Decode16, 0x64, 0x64, 1, 1), IRQNoFlags () {1}";
    EXPECT_NE(body.find(std::string("_S5_\x12\x08\x04\x0A\x05\x0A\x05\x00\x00", 13)), std::string::npos) << "Name (_S5, Package (4) {5, 5, 0, 0})";
}

TEST(AcpiTables, WrittenIntoTheReservedBiosArea)
{
    auto memory = memory::GuestMemory::create(16 * MiB).value();
    u64 rsdp = write_acpi_tables(memory, config_for(2)).value();
    EXPECT_GE(rsdp, boot_layout::ACPI_TABLES);
    EXPECT_LT(rsdp, boot_layout::ACPI_TABLES_END);
    char signature[9] = {};
    ASSERT_TRUE(memory.read(rsdp, std::span(reinterpret_cast<u8*>(signature), 8)));
    EXPECT_STREQ(signature, "RSD PTR ");
    // Far more vCPUs than fit below 1 MiB are refused.
    EXPECT_FALSE(write_acpi_tables(memory, config_for(100000)));
}

// Every table disassembles and compiles back with ACPICA's iasl without an error or a warning.
TEST(AcpiTables, IaslDisassemblesAndRecompilesEveryTable)
{
    ASSERT_EQ(run("iasl -v").status, 0) << "iasl is missing: install Debian's acpica-tools";
    auto layout = build_acpi_tables(BASE, config_with_pci(2));
    char directory_template[] = "/tmp/kasou-acpi.XXXXXX";
    ASSERT_NE(::mkdtemp(directory_template), nullptr);
    std::string directory = directory_template;
    for (auto [name, offset] : { std::pair { "dsdt", layout.dsdt }, { "facp", layout.fadt }, { "apic", layout.madt }, { "xsdt", layout.xsdt },
             { "mcfg", layout.mcfg } }) {
        auto table = table_bytes(layout, offset);
        std::string path = directory + "/" + name;
        std::ofstream(path + ".dat", std::ios::binary).write(reinterpret_cast<char const*>(table.data()), static_cast<std::streamsize>(table.size()));
        auto disassembled = run("cd " + directory + " && iasl -d " + name + ".dat");
        EXPECT_EQ(disassembled.status, 0) << name << ": " << disassembled.output;
        // -oa: no optimizations, so the output can be compared with kasou's bytes; -we: warnings fail.
        auto compiled = run("cd " + directory + " && iasl -oa -we -vi -p " + name + "_recompiled " + name + ".dsl");
        EXPECT_EQ(compiled.status, 0) << name << ": " << compiled.output;
        EXPECT_NE(compiled.output.find(" 0 Errors, 0 Warnings"), std::string::npos) << name << ": " << compiled.output;
        // The recompiled table is the one kasou wrote, but for the compiler's creator ID and revision
        // (header bytes 28-35) and so the checksum (byte 9).
        std::ifstream recompiled(directory + "/" + name + "_recompiled.aml", std::ios::binary);
        std::vector<u8> again((std::istreambuf_iterator<char>(recompiled)), std::istreambuf_iterator<char>());
        ASSERT_EQ(again.size(), table.size()) << name;
        EXPECT_TRUE(std::equal(table.begin(), table.begin() + 9, again.begin())) << name;
        EXPECT_TRUE(std::equal(table.begin() + 10, table.begin() + 28, again.begin() + 10)) << name;
        EXPECT_TRUE(std::equal(table.begin() + 36, table.end(), again.begin() + 36)) << name << ": the bodies differ";
    }
    run("rm -rf " + directory);
}

TEST(Aml, PackageLengthEncodings)
{
    using aml::package_length;
    EXPECT_EQ(package_length(0), (aml::Bytes { 0x01 }));
    EXPECT_EQ(package_length(0x3E), (aml::Bytes { 0x3F }));
    // 0x3F + 2 bytes of PkgLength = 0x41: lead byte 0x41 (one more byte, low nibble 1), then 0x04.
    EXPECT_EQ(package_length(0x3F), (aml::Bytes { 0x41, 0x04 }));
    EXPECT_EQ(package_length(0xFFD), (aml::Bytes { 0x4F, 0xFF }));
    // 0xFFE + 3 = 0x1001: lead byte 0x81 (two more bytes, low nibble 1), then 0x00, 0x01.
    EXPECT_EQ(package_length(0xFFE), (aml::Bytes { 0x81, 0x00, 0x01 }));
}

TEST(Aml, IntegersNamesAndIds)
{
    EXPECT_EQ(aml::integer(0), (aml::Bytes { 0x00 }));
    EXPECT_EQ(aml::integer(1), (aml::Bytes { 0x01 }));
    EXPECT_EQ(aml::integer(5), (aml::Bytes { 0x0A, 0x05 }));
    EXPECT_EQ(aml::integer(0x3F8), (aml::Bytes { 0x0B, 0xF8, 0x03 }));
    EXPECT_EQ(aml::integer(0x12345678), (aml::Bytes { 0x0C, 0x78, 0x56, 0x34, 0x12 }));
    EXPECT_EQ(aml::integer(0x1'0000'0000), (aml::Bytes { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 }));
    EXPECT_EQ(aml::eisa_id("PNP0501"), (aml::Bytes { 0x0C, 0x41, 0xD0, 0x05, 0x01 }));
    EXPECT_EQ(aml::eisa_id("PNP0B00"), (aml::Bytes { 0x0C, 0x41, 0xD0, 0x0B, 0x00 }));
    EXPECT_EQ(aml::string("ab"), (aml::Bytes { 0x0D, 'a', 'b', 0 }));
    EXPECT_EQ(aml::name("_UID", aml::integer(1)), (aml::Bytes { 0x08, '_', 'U', 'I', 'D', 0x01 }));
    EXPECT_EQ(aml::name("_S5", aml::integer(0)), (aml::Bytes { 0x08, '_', 'S', '5', '_', 0x00 }));
    EXPECT_EQ(aml::device("DEV", {}), (aml::Bytes { 0x5B, 0x82, 0x05, 'D', 'E', 'V', '_' }));
    EXPECT_EQ(aml::scope("\\_SB", {}), (aml::Bytes { 0x10, 0x06, '\\', '_', 'S', 'B', '_' }));
}

TEST(AcpiTables, PciHostBridgeAndMcfg)
{
    EXPECT_EQ(build_acpi_tables(BASE, config_for(1)).mcfg, 0u) << "no MCFG without PCI";
    auto layout = build_acpi_tables(BASE, config_with_pci(1));
    auto const& bytes = layout.bytes;
    ASSERT_NE(layout.mcfg, 0u);
    EXPECT_EQ(signature(bytes, layout.mcfg), "MCFG");
    EXPECT_EQ(sum(bytes, layout.mcfg, at<u32>(bytes, layout.mcfg + 4)), 0);
    EXPECT_EQ(at<u32>(bytes, layout.mcfg + 4), 60u);
    EXPECT_EQ(at<u64>(bytes, layout.mcfg + 44), 0xE800'0000u) << "ECAM base";
    EXPECT_EQ(at<u8>(bytes, layout.mcfg + 54), 0) << "first bus";
    EXPECT_EQ(at<u8>(bytes, layout.mcfg + 55), 0) << "last bus";
    EXPECT_EQ(at<u32>(bytes, layout.xsdt + 4), 36u + 24);
    EXPECT_EQ(at<u64>(bytes, layout.xsdt + 52), BASE + layout.mcfg);
    // The DSDT names a PCI0 device with a DWordMemory descriptor for the BAR window.
    auto dsdt = table_bytes(layout, layout.dsdt);
    std::string text(dsdt.begin(), dsdt.end());
    EXPECT_NE(text.find("PCI0"), std::string::npos);
    u8 const window[] = { 0x87, 23, 0, 0, 0x0C, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xC0, 0xFF, 0xFF, 0xFF, 0xDF };
    EXPECT_NE(std::search(dsdt.begin(), dsdt.end(), std::begin(window), std::end(window)), dsdt.end());
}
