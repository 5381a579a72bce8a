// Boots guests/virtio_smoke, a guest with its own virtio-pci driver, with kasou's virtio devices
// on /dev/kvm: PCI enumeration, MSI-X through irqfd, notifications through ioeventfd, virtio-blk
// on a raw image and virtio-rng; and the --cores placement of vCPU threads.

#include <csignal>
#include <dirent.h>
#include <regex>
#include <sched.h>
#include <sstream>
#include <unistd.h>

#include <gtest/gtest.h>
#include <kasou_guests.h>

#include "kasou_process.h"

using namespace kasou::test;
using namespace std::chrono_literals;

namespace {

constexpr int GUEST_PASSED = 1;

void expect_lines(std::string const& output, std::vector<std::string> const& patterns)
{
    for (auto const& pattern : patterns) {
        std::regex line("(^|\n)" + pattern + "(\n|$)", std::regex::extended);
        EXPECT_TRUE(std::regex_search(output, line)) << "no line matching '" << pattern << "' in:\n" << output;
    }
}

std::string make_disk(TemporaryDirectory const& directory, std::string const& name = "disk.img")
{
    auto path = directory.file(name);
    write_file(path, "");
    EXPECT_EQ(::truncate(path.c_str(), 64 << 20), 0);
    return path;
}

} // namespace

TEST(Virtio, BlkAndRngWithMsix)
{
    TemporaryDirectory directory;
    auto disk = make_disk(directory);
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", disk + ",serial=kasou-disk-0", "--memory", "128M",
        "--cmdline", "expect=blk,rng" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    expect_lines(result.out, {
        "virtio_smoke: start \\(msi-x interrupts\\)",
        "pci 00:[0-9a-f]{2}\\.0 1af4:1042 class 010000 virtio-blk",
        "pci 00:[0-9a-f]{2}\\.0 1af4:1044 class 00ff00 virtio-rng",
        "pci: 3 functions on bus 0, 0 memory bars assigned by the guest",
        "virtio-blk: capacity 131072 sectors \\(67108864 bytes\\), block size 512",
        "virtio-blk: wrote 3 blocks of 4096 bytes at sectors 0, 65536, 131064 \\(indirect descriptors\\)",
        "virtio-blk: flush ok",
        "virtio-blk: read back 3 blocks, all match",
        "virtio-blk: discard of sectors 65536-65543 reads back as zeroes",
        "virtio-blk: write-zeroes of sectors 131064-131071 reads back as zeroes",
        "virtio-blk: serial \"kasou-disk-0\"",
        "virtio-rng: 2 reads of 64 bytes, not zero, different .*",
        "virtio: [1-9][0-9]* queue interrupts",
        "virtio_smoke: all checks passed",
    });
    // The pattern the guest wrote at sector 0 reached the image file, and the discarded range is a hole.
    auto image = read_file(disk);
    ASSERT_EQ(image.size(), 64u << 20);
    EXPECT_NE(image.substr(0, 4096), std::string(4096, '\0'));
    EXPECT_EQ(image.substr(65536 * 512, 4096), std::string(4096, '\0'));
}

// A driver that moves every BAR (decoding off, new addresses, decoding on) keeps working, and its
// notifications still go through ioeventfds at the new addresses: none reaches kasou as an exit.
TEST(Virtio, MovedBarsKeepTheirNotificationRoutes)
{
    TemporaryDirectory directory;
    auto disk = make_disk(directory);
    auto result = run_kasou({ "--log-level", "debug", "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", disk, "--memory", "128M",
        "--cmdline", "expect=blk,rng move_bars=1" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    expect_lines(result.out, {
        "pci: 2 memory bars moved by the guest",
        "pci 00:[0-9a-f]{2}\\.0 bar0 0xd[0-9a-f]{7}, 32 KiB, 64-bit",
        "virtio-blk: read back 3 blocks, all match",
        "virtio_smoke: all checks passed",
    });
    EXPECT_EQ(result.err.find("took a userspace exit"), std::string::npos) << result.err;
}

// A driver that breaks the virtio and PCI rules while its device runs (guests/virtio_status_abuse):
// DRIVER_OK cleared and set again without a reset, queue registers rewritten after DRIVER_OK,
// vectors beyond the MSI-X table, the BAR sized, moved and undecoded. kasou answers as the spec
// says and the device serves requests again after a reset; the VM is never taken down.
TEST(Virtio, HostileDriverCannotAbortTheVmm)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_STATUS_ABUSE, "--memory", "64M" });
    EXPECT_EQ(result.signal, 0) << "kasou died of a signal\n" << result.out << result.err;
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    expect_lines(result.out, {
        "status after DRIVER_OK cleared and set again: ok \\(0x4f\\)",
        "queue_size written after DRIVER_OK: ok \\(0x8\\)",
        "queue_enable written 0 after DRIVER_OK: ok \\(0x1\\)",
        "config_msix_vector beyond the table: ok \\(0xffff\\)",
        "msi-x entry 1 address after a write across entries: ok \\(0xfee01000\\)",
        "virtio-rng: 64 bytes after the reset",
        "virtio-rng: 64 bytes after moving the bar while running",
        "status with memory decoding off: ok \\(0xff\\)",
        "virtio-rng: 64 bytes after the last reset",
        "virtio_status_abuse: all checks passed",
    });
    EXPECT_NE(result.err.find("cleared device status bits 0x4 without a reset"), std::string::npos) << result.err;
}

TEST(Virtio, PollingDriverWithoutInterrupts)
{
    TemporaryDirectory directory;
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", make_disk(directory), "--memory", "128M",
        "--cmdline", "expect=blk,rng wait=poll" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    expect_lines(result.out, { "virtio_smoke: start \\(polling\\)", "virtio_smoke: all checks passed" });
}

// A driver at CPL3 (native speed on PVM) that keeps requests coming as fast as they complete,
// against I/O threads that poll for them and that never poll: no request is lost (the guest
// gives up after ~2 s without a completion) and every one completes with status OK. Inside the
// nested test host, whose every guest instruction QEMU's software CPU emulates, fewer requests.
TEST(Virtio, FastPollingDriverAgainstPollingAndSleepingIoThreads)
{
    TemporaryDirectory directory;
    auto disk = make_disk(directory);
    std::string requests = in_nested_test_host() ? "4000" : "20000";
    for (std::string io_poll : { "32", "0" }) {
        for (std::string options : { "bench=randwrite qd=1", "bench=randread qd=16" }) {
            auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", disk, "--memory", "128M", "--no-rng",
                                        "--io-poll-us", io_poll, "--cmdline", options + " requests=" + requests + " wait=poll cpl=3" },
                std::chrono::seconds(180));
            EXPECT_EQ(result.status, GUEST_PASSED) << "--io-poll-us " << io_poll << " " << options << "\n" << result.out << result.err;
            expect_lines(result.out, { "bench: .* at cpl3, .*", "bench: " + requests + " requests in [0-9]+ us, 0 queue interrupts" });
        }
    }
}

// Confined to as many CPUs as it has vCPUs (one), kasou does not poll (the thread would hold back
// the vCPU), and requests still complete.
TEST(Virtio, NoPollingOnOneCpu)
{
    cpu_set_t saved;
    ASSERT_EQ(::sched_getaffinity(0, sizeof(saved), &saved), 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &saved)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    ASSERT_EQ(::sched_setaffinity(0, sizeof(one), &one), 0); // inherited by the kasou it starts
    TemporaryDirectory directory;
    auto result = run_kasou({ "--log-level", "debug", "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", make_disk(directory), "--memory",
        "128M", "--no-rng", "--cmdline", "bench=randread qd=4 requests=2000 wait=poll cpl=3" });
    ASSERT_EQ(::sched_setaffinity(0, sizeof(saved), &saved), 0);
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    EXPECT_NE(result.err.find("1 CPUs to run on for 1 vCPUs: virtio I/O threads will not poll"), std::string::npos) << result.err;
    expect_lines(result.out, { "bench: 2000 requests in [0-9]+ us, 0 queue interrupts" });
}

TEST(Virtio, IoPollOutsideItsRangeIsRefused)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--io-poll-us", "5000" });
    EXPECT_EQ(result.status, 2) << result.out << result.err;
    EXPECT_NE(result.err.find("--io-poll-us"), std::string::npos) << result.err;
}

TEST(Virtio, NoRngLeavesTheEntropyDeviceOut)
{
    TemporaryDirectory directory;
    auto without = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", make_disk(directory), "--memory", "128M", "--no-rng",
        "--cmdline", "expect=blk" });
    EXPECT_EQ(without.status, GUEST_PASSED) << without.out << without.err;
    EXPECT_EQ(without.out.find("virtio-rng"), std::string::npos) << without.out;
    auto missing = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--memory", "128M", "--no-rng", "--cmdline", "expect=rng" });
    EXPECT_EQ(missing.status, 9) << "the guest's 'device missing' value: " << missing.out;
}

TEST(Virtio, TwoDisks)
{
    TemporaryDirectory directory;
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", make_disk(directory, "a.img"), "--disk",
        make_disk(directory, "b.img"), "--memory", "128M", "--cmdline", "expect=blk,rng" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    std::regex checked("virtio-blk: read back 3 blocks, all match");
    auto count = std::distance(std::sregex_iterator(result.out.begin(), result.out.end(), checked), std::sregex_iterator());
    EXPECT_EQ(count, 2) << "the guest checks every disk it finds: " << result.out;
}

TEST(Virtio, ReadOnlyDiskRefusesWrites)
{
    TemporaryDirectory directory;
    auto disk = make_disk(directory);
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", disk + ",ro", "--memory", "128M", "--cmdline", "expect=blk" });
    EXPECT_EQ(result.status, 17) << "the guest's 'write status not OK' value: " << result.out;
    expect_lines(result.out, { "FAIL: virtio-blk: writing sector 0: status 1" });
    EXPECT_EQ(read_file(disk), std::string(64u << 20, '\0')) << "the image is untouched";
}

TEST(Virtio, BadDiskOptionsAreRefusedBeforeBoot)
{
    auto missing = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", "/nonexistent/disk.img" });
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.err.find("--disk /nonexistent/disk.img"), std::string::npos) << missing.err;
    EXPECT_EQ(missing.out, "");
    auto bad = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--disk", "disk.img,turbo" });
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("unknown option 'turbo'"), std::string::npos) << bad.err;
}

TEST(Cores, VcpuThreadsArePinnedToTheGroup)
{
    // The host's last CPU, so the group is not simply where the thread would have run anyway.
    std::string last_cpu = std::to_string(::sysconf(_SC_NPROCESSORS_ONLN) - 1);
    KasouProcess process({ "run", "--kernel", KASOU_GUEST_SPIN, "--cpus", "1", "--cores", last_cpu });
    ASSERT_TRUE(process.wait_for_output("spinning", 30s));
    std::string task_dir = "/proc/" + std::to_string(process.pid()) + "/task";
    std::string allowed;
    if (DIR* tasks = ::opendir(task_dir.c_str())) {
        while (dirent* entry = ::readdir(tasks)) {
            std::string task = task_dir + "/" + entry->d_name;
            if (read_file(task + "/comm") != "vcpu0\n")
                continue;
            std::istringstream status(read_file(task + "/status"));
            for (std::string line; std::getline(status, line);)
                if (line.starts_with("Cpus_allowed_list:"))
                    allowed = line.substr(line.find_first_not_of(" \t", 18));
        }
        ::closedir(tasks);
    }
    process.send_signal(SIGTERM);
    auto result = process.wait(10s);
    EXPECT_EQ(allowed, last_cpu) << result.err;
    EXPECT_EQ(result.status, 8);
}

TEST(Cores, ImpossibleGroupsAreRefused)
{
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--cpus", "2", "--cores", "1" });
    EXPECT_EQ(result.status, 2);
    EXPECT_NE(result.err.find("--cores"), std::string::npos) << result.err;
}

TEST(Virtio, ConsoleNetAndVsockEnumerate)
{
    TemporaryDirectory directory;
    auto result = run_kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--memory", "128M", "--console", "virtio", "--net",
        "tap=kasou-it0,mac=52:54:00:12:34:56", "--vsock", "cid=7,uds=" + directory.file("vsock.sock"), "--cmdline", "expect=rng,console" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    expect_lines(result.out, {
        "pci 00:[0-9a-f]{2}\\.0 1af4:1041 class 020000 .*",
        "pci 00:[0-9a-f]{2}\\.0 1af4:1043 class 078000 virtio-console",
        "pci 00:[0-9a-f]{2}\\.0 1af4:1053 class 00ff00 .*",
        "virtio_smoke: hello on virtio-console port 0",
        "virtio_smoke: all checks passed",
    });
}

TEST(Virtio, BadNetAndVsockOptionsAreRefused)
{
    auto net = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--net", "mac=52:54:00:00:00:01" });
    EXPECT_EQ(net.status, 2);
    EXPECT_NE(net.err.find("the tap interface is missing"), std::string::npos) << net.err;
    auto mac = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--net", "tap=kasou-it1,mac=zz" });
    EXPECT_EQ(mac.status, 2);
    EXPECT_NE(mac.err.find("--net mac"), std::string::npos) << mac.err;
    auto vsock = run_kasou({ "run", "--kernel", KASOU_GUEST_PVH_HELLO, "--vsock", "cid=2,uds=/tmp/x" });
    EXPECT_EQ(vsock.status, 2);
    EXPECT_NE(vsock.err.find("cid must be a number from 3"), std::string::npos) << vsock.err;
}

TEST(Virtio, PoolVolumeAsDisk)
{
    TemporaryDirectory directory;
    auto state = directory.file("state");
    auto member = make_disk(directory, "member.img");
    auto kasou = [&](std::vector<std::string> arguments) {
        arguments.insert(arguments.begin(), { "--state-dir", state });
        return run_kasou(arguments);
    };
    ASSERT_EQ(kasou({ "pool", "create", "tank", "--layout", "linear", member }).status, 0);
    ASSERT_EQ(kasou({ "vol", "create", "tank/root", "--size", "32M" }).status, 0);
    ASSERT_EQ(kasou({ "vol", "snapshot", "tank/root", "tank/before" }).status, 0);

    auto result = kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--memory", "128M", "--disk", "vol:tank/root", "--cmdline", "expect=blk" });
    EXPECT_EQ(result.status, GUEST_PASSED) << result.out << result.err;
    expect_lines(result.out, { "virtio-blk: capacity 65536 sectors \\(33554432 bytes\\), block size 512", "virtio-blk: read back 3 blocks, all match" });

    // The guest's writes reached the volume; the snapshot taken before still reads as zeroes and,
    // being a snapshot, cannot be written by a guest.
    auto exported = directory.file("root.raw");
    ASSERT_EQ(kasou({ "vol", "export", "tank/root", exported }).status, 0);
    EXPECT_NE(read_file(exported).substr(0, 4096), std::string(4096, '\0'));
    auto snapshot = kasou({ "run", "--kernel", KASOU_GUEST_VIRTIO_SMOKE, "--memory", "128M", "--disk", "vol:tank/before", "--cmdline", "expect=blk" });
    EXPECT_EQ(snapshot.status, 17) << snapshot.out << snapshot.err;
    auto snapshot_raw = directory.file("before.raw");
    ASSERT_EQ(kasou({ "vol", "export", "tank/before", snapshot_raw }).status, 0);
    EXPECT_EQ(read_file(snapshot_raw), std::string(32u << 20, '\0'));
    ASSERT_EQ(kasou({ "pool", "check", "tank" }).status, 0);
}
