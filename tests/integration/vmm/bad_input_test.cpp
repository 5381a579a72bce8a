// Corrupt kernels and impossible configurations: each must end kasou with status 2 and one clear
// error line before any vCPU runs (so the guest prints nothing).

#include <unistd.h>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "../../unit/arch/elf_builder.h"
#include "kasou_process.h"

using namespace kasou;
using namespace kasou::test;

namespace {

constexpr int STATUS_CONFIGURATION_ERROR = 2;

void expect_refused(std::vector<std::string> const& arguments, std::string const& message)
{
    auto result = run_kasou(arguments, std::chrono::seconds(20));
    EXPECT_EQ(result.status, STATUS_CONFIGURATION_ERROR) << result.err;
    EXPECT_EQ(result.out, "") << "no guest code may run";
    EXPECT_NE(result.err.find(message), std::string::npos) << "expected '" << message << "' in: " << result.err;
}

std::string as_string(std::vector<u8> const& bytes) { return std::string(bytes.begin(), bytes.end()); }

} // namespace

TEST(BadInput, MissingKernel)
{
    expect_refused({ "run", "--kernel", "/nonexistent/vmlinux" }, "kernel: open /nonexistent/vmlinux: No such file or directory");
}

TEST(BadInput, UnknownIrqchipMode)
{
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--irqchip", "userspace" }, "--irqchip");
}

TEST(BadInput, KernelIsADirectory)
{
    TemporaryDirectory directory;
    expect_refused({ "run", "--kernel", directory.path() }, "kernel");
}

TEST(BadInput, NotAKernel)
{
    TemporaryDirectory directory;
    write_file(directory.file("notes.txt"), "just some text\n");
    expect_refused({ "run", "--kernel", directory.file("notes.txt") }, "unrecognized kernel image");
    write_file(directory.file("empty"), "");
    expect_refused({ "run", "--kernel", directory.file("empty") }, "kernel image is empty");
}

TEST(BadInput, TruncatedElf)
{
    TemporaryDirectory directory;
    auto image = read_file(KASOU_GUEST_PVH_HELLO);
    write_file(directory.file("truncated.elf"), image.substr(0, 100));
    expect_refused({ "run", "--kernel", directory.file("truncated.elf") }, "past the end");
    write_file(directory.file("half.elf"), image.substr(0, image.size() / 2));
    expect_refused({ "run", "--kernel", directory.file("half.elf") }, "past the end");
}

TEST(BadInput, ElfWithoutPvhNote)
{
    expect_refused({ "run", "--kernel", KASOU_BINARY }, "no PVH entry note");
}

TEST(BadInput, OverlappingAndOutOfRamSegments)
{
    TemporaryDirectory directory;
    auto overlapping = build_elf64(0x100000, { { 0x100000, { 0xf4 }, 0x2000 }, { 0x101000, { 0xf4 }, 0x1000 } },
        { { "Xen", 18, pvh_entry_description(0x100000) } });
    write_file(directory.file("overlap.elf"), as_string(overlapping));
    expect_refused({ "run", "--kernel", directory.file("overlap.elf") }, "overlap");
    write_file(directory.file("high.elf"), as_string(build_pvh_guest({ 0xf4 }, 0x8000000)));
    expect_refused({ "run", "--kernel", directory.file("high.elf"), "--memory", "64M" }, "does not fit in guest RAM");
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--memory", "1M" }, "does not fit in guest RAM");
}

TEST(BadInput, FlatImageTooLarge)
{
    TemporaryDirectory directory;
    write_file(directory.file("big.bin"), std::string(0x100000, '\x90'));
    expect_refused({ "run", "--kernel", directory.file("big.bin"), "--flat" }, "at most");
}

TEST(BadInput, ImpossibleMemoryAndCpuCounts)
{
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--memory", "0" }, "must not be zero");
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--memory", "100T" }, "more than this host's");
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--memory", "lots" }, "invalid size 'lots'");
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--cpus", "0" }, "--cpus must be at least 1");
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--cpus", "100000" }, "more than KVM allows");
}

TEST(BadInput, UnknownCpuFeatureAndSerial)
{
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--cpu-features", "-hyperdrive" }, "unknown feature 'hyperdrive'");
    expect_refused({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--serial", "telnet:23" }, "expected stdio, file:PATH or unix:PATH");
}

TEST(BadInput, UsageErrors)
{
    auto no_kernel = run_kasou({ "run" });
    EXPECT_EQ(no_kernel.status, STATUS_CONFIGURATION_ERROR);
    EXPECT_NE(no_kernel.err.find("--kernel is required"), std::string::npos) << no_kernel.err;
    auto help = run_kasou({ "run", "--help" });
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("Exit status"), std::string::npos) << help.out;
    EXPECT_NE(help.out.find("--cpu-features"), std::string::npos);
}

TEST(BadInput, EmulationFailureNamesTheExitAndTheBytes)
{
    // int3 at the PVH entry: PVM cannot emulate it at CPL0 (KVM_EXIT_INTERNAL_ERROR); with
    // VT-x/AMD-V it raises #BP with no IDT, a triple fault. Either way kasou says where it stopped.
    TemporaryDirectory directory;
    write_file(directory.file("int3.elf"), as_string(build_pvh_guest({ 0xcc })));
    auto result = run_kasou({ "run", "--kernel", directory.file("int3.elf") }, std::chrono::seconds(20));
    bool pvm = ::access("/sys/module/kvm_pvm", F_OK) == 0;
    EXPECT_EQ(result.status, pvm ? 10 : 6) << result.err;
    if (pvm) {
        EXPECT_NE(result.err.find("emulation failure"), std::string::npos) << result.err;
        EXPECT_NE(result.err.find("bytes at RIP: cc"), std::string::npos) << result.err;
    }
    EXPECT_NE(result.err.find("vCPU 0"), std::string::npos) << result.err;
    if (host_keeps_state_across_shutdown()) {
        EXPECT_NE(result.err.find("RIP 0x100000"), std::string::npos) << result.err;
    }
}

TEST(BadInput, LinuxImagesOnPvmHostsAreWarnedAbout)
{
    // An image marked as Linux by its ELF note (it only exits through the debug port).
    TemporaryDirectory directory;
    std::vector<u8> code = { 0xb0, 0x00, 0xe6, 0xf4 }; // mov al, 0; out 0xf4, al
    auto image = build_elf64(0x100000, { { 0x100000, code, code.size() } },
        { { "Linux", 6, { 'x' } }, { "Xen", 18, pvh_entry_description(0x100000) } });
    write_file(directory.file("linux.elf"), as_string(image));
    auto result = run_kasou({ "run", "--kernel", directory.file("linux.elf") }, std::chrono::seconds(20));
    EXPECT_EQ(result.status, 1) << result.err;
    bool pvm = ::access("/sys/module/kvm_pvm", F_OK) == 0;
    EXPECT_EQ(result.err.find("KVM is PVM") != std::string::npos, pvm) << result.err;
}
