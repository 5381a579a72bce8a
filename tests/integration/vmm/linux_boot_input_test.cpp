// The Linux boot path on /dev/kvm without a Linux kernel: ACPI power-off and the initrd module seen
// by the acpi_poweroff guest, and the refusals of bad bzImages and initrds (status 2, one error
// line, no guest output). Stock Linux kernels boot in tests/nested/.

#include <algorithm>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "../../unit/arch/bzimage_builder.h"
#include "kasou_process.h"

using namespace kasou;
using namespace kasou::test;

namespace {

constexpr int STATUS_CONFIGURATION_ERROR = 2;

std::string as_string(std::vector<u8> const& bytes) { return std::string(bytes.begin(), bytes.end()); }

void expect_one_error_line(std::vector<std::string> const& arguments, std::string const& message)
{
    auto result = run_kasou(arguments, std::chrono::seconds(20));
    EXPECT_EQ(result.status, STATUS_CONFIGURATION_ERROR) << result.err;
    EXPECT_EQ(result.out, "") << "no guest code may run";
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << "one error line: " << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << "expected '" << message << "' in: " << result.err;
}

} // namespace

TEST(LinuxBootInput, GuestPowersOffThroughAcpi)
{
    auto result = run_kasou({ "--log-level", "info", "run", "--kernel", KASOU_GUEST_ACPI_POWEROFF, "--memory", "64M" });
    EXPECT_EQ(result.status, 0) << result.out << result.err;
    EXPECT_NE(result.out.find("modules: none"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("xsdt with 3 tables, fadt revision 6"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("sleep control register at port 0x600"), std::string::npos) << result.out;
    EXPECT_NE(result.err.find("guest powered off (ACPI S5)"), std::string::npos) << result.err;
}

TEST(LinuxBootInput, PvhGuestGetsTheInitrdAsItsFirstModule)
{
    TemporaryDirectory directory;
    std::string contents = "initrd bytes for the pvh module";
    write_file(directory.file("initrd"), contents);
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_ACPI_POWEROFF, "--memory", "64M", "--initrd", directory.file("initrd") });
    EXPECT_EQ(result.status, 0) << result.out << result.err;
    // 31 bytes at the highest page below 64 MiB.
    EXPECT_NE(result.out.find("module 0: 31 bytes at 0x3fff000, page aligned: yes, starts \"" + contents.substr(0, 31) + "\""),
        std::string::npos)
        << result.out;
}

TEST(LinuxBootInput, BadBzImagesAreRefused)
{
    TemporaryDirectory directory;
    auto refuse = [&](std::string const& name, std::vector<u8> const& image, std::string const& message, std::string const& memory = "256M") {
        write_file(directory.file(name), as_string(image));
        expect_one_error_line({ "run", "--kernel", directory.file(name), "--memory", memory }, message);
    };
    BzImageSpec old_protocol;
    old_protocol.version = 0x0204;
    refuse("old", build_bzimage(old_protocol), "boot protocol 2.04; kasou needs 2.06");
    BzImageSpec no_64bit;
    no_64bit.xloadflags = 0;
    refuse("no64", build_bzimage(no_64bit), "no 64-bit entry point");
    BzImageSpec fixed;
    fixed.relocatable = 0;
    refuse("fixed", build_bzimage(fixed), "not relocatable");
    auto truncated = build_bzimage();
    truncated.resize(truncated.size() / 2);
    refuse("truncated", truncated, "bzImage is truncated");
    // The crafted kernel asks for 32 MiB from 16 MiB to decompress.
    refuse("small-memory", build_bzimage(), "--memory 32 MiB is too small", "32M");
}

TEST(LinuxBootInput, BadInitrdsAreRefused)
{
    TemporaryDirectory directory;
    expect_one_error_line({ "run", "--kernel", KASOU_GUEST_ACPI_POWEROFF, "--initrd", "/nonexistent/initrd.img" },
        "initrd: open /nonexistent/initrd.img: No such file or directory");
    // 7 MiB is less than the 8 MiB of RAM, but more than is free above the guest and kasou's boot data.
    write_file(directory.file("big"), std::string(7 * 1024 * 1024, 'x'));
    expect_one_error_line({ "run", "--kernel", KASOU_GUEST_ACPI_POWEROFF, "--memory", "8M", "--initrd", directory.file("big") },
        "--initrd: initrd (7 MiB) does not fit in guest RAM");
    write_file(directory.file("empty"), "");
    expect_one_error_line({ "run", "--kernel", KASOU_GUEST_ACPI_POWEROFF, "--initrd", directory.file("empty") },
        "initrd " + directory.file("empty") + " is empty");
    expect_one_error_line({ "run", "--kernel", KASOU_GUEST_HELLO_FLAT, "--flat", "--initrd", directory.file("big") },
        "--initrd needs a Linux bzImage or a PVH ELF kernel");
}

TEST(LinuxBootInput, OnRebootTakesExitOrRestart)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--on-reboot", "sometimes" });
    EXPECT_NE(result.status, 0);
    EXPECT_EQ(result.out, "");
    EXPECT_NE(result.err.find("--on-reboot"), std::string::npos) << result.err;
    auto help = run_kasou({ "run", "--help" });
    EXPECT_NE(help.out.find("--initrd"), std::string::npos);
    EXPECT_NE(help.out.find("--on-reboot"), std::string::npos);
}
