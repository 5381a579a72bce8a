// Snapshot creation time on thin volumes with 1 GiB and 16 GiB written, against qcow2 internal
// snapshots (`qemu-img snapshot -c`) of images holding the same amount, in the same run.
// Usage: bench_storage_snapshot [DIR] [SIZES]   (default /var/tmp, "1G,16G"; needs 2 x SIZES free)

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/size.h"
#include "base/sys_file.h"
#include "base/sys_process.h"
#include "base/try.h"
#include "storage/pool/file_member_disk.h"
#include "storage/pool/thin_pool.h"

using namespace kasou;
using namespace kasou::storage;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int REPETITIONS = 7;

double milliseconds_since(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values)
{
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

ErrorOr<void> make_file(std::string const& path, u64 size)
{
    Fd fd = TRY(sys::open(path, O_RDWR | O_CREAT | O_TRUNC, 0644));
    return sys::ftruncate(fd.get(), size);
}

struct Result {
    double kasou_median;
    double kasou_max;
    double qcow2_median;
    double qemu_img_start;
};

ErrorOr<Result> measure(std::string const& dir, u64 written)
{
    Result result {};
    std::string disk = dir + "/snapshot-bench-disk.img";
    TRY(make_file(disk, written + written / 16 + 256 * MiB));
    {
        std::vector<std::unique_ptr<MemberDisk>> disks;
        disks.push_back(TRY(FileMemberDisk::open(disk)));
        auto pool = TRY(ThinPool::create("bench", SegmentKind::Linear, 0, std::move(disks), true));
        TRY(pool->create_volume("v", written));
        auto volume = TRY(pool->open_volume("v"));
        std::vector<u8> data(1 * MiB);
        for (u64 offset = 0; offset < written; offset += data.size()) {
            std::fill(data.begin(), data.end(), static_cast<u8>(offset / MiB + 1));
            TRY(volume->write(offset, data, false));
        }
        TRY(volume->flush());
        std::vector<double> times;
        for (int i = 0; i < REPETITIONS; ++i) {
            TRY(volume->write(static_cast<u64>(i) * CHUNK_SIZE, std::span(data).first(4096), false));
            auto start = Clock::now();
            TRY(pool->snapshot("v", fmt::format("s{}", i), false));
            times.push_back(milliseconds_since(start));
        }
        result.kasou_median = median(times);
        result.kasou_max = *std::max_element(times.begin(), times.end());
        TRY(pool->close());
    }
    std::filesystem::remove(disk);

    std::string image = dir + "/snapshot-bench.qcow2";
    std::string size_text = std::to_string(written);
    if (TRY(sys::spawn_and_wait({ "qemu-img", "create", "-q", "-f", "qcow2", image, size_text })) != 0)
        return make_error("qemu-img create failed");
    // qemu-io writes at most 2 GiB per command: one command per GiB.
    std::vector<std::string> fill { "qemu-io", "-f", "qcow2" };
    for (u64 offset = 0; offset < written; offset += GiB) {
        fill.push_back("-c");
        fill.push_back(fmt::format("write -q -P 0x5a {} {}", offset, std::min(GiB, written - offset)));
    }
    fill.push_back(image);
    if (TRY(sys::spawn_and_wait(fill)) != 0)
        return make_error("qemu-io write failed");
    std::vector<double> creates;
    std::vector<double> starts;
    for (int i = 0; i < REPETITIONS; ++i) {
        auto start = Clock::now();
        if (TRY(sys::spawn_and_wait({ "qemu-img", "snapshot", "-q", "-l", image })) != 0)
            return make_error("qemu-img snapshot -l failed");
        starts.push_back(milliseconds_since(start));
        start = Clock::now();
        if (TRY(sys::spawn_and_wait({ "qemu-img", "snapshot", "-q", "-c", fmt::format("s{}", i), image })) != 0)
            return make_error("qemu-img snapshot -c failed");
        creates.push_back(milliseconds_since(start));
    }
    result.qcow2_median = median(creates);
    result.qemu_img_start = median(starts);
    std::filesystem::remove(image);
    return result;
}

} // namespace

int main(int argc, char** argv)
{
    std::string dir = argc > 1 ? argv[1] : "/var/tmp";
    std::string sizes = argc > 2 ? argv[2] : "1G,16G";
    fmt::print("snapshot creation, median of {} (kasou: in-process, includes the commit and its fsyncs;\n"
               "qcow2: qemu-img snapshot -c, less the median time of qemu-img snapshot -l on the same image)\n\n",
        REPETITIONS);
    fmt::print("| written | kasou median | kasou max | qcow2 (qemu-img) | qcow2 / kasou |\n|---|---|---|---|---|\n");
    for (size_t start = 0; start < sizes.size();) {
        size_t comma = sizes.find(',', start);
        std::string text = sizes.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? sizes.size() : comma + 1;
        auto written = parse_size(text);
        if (!written) {
            fmt::print(stderr, "{}\n", written.error().to_string());
            return 2;
        }
        auto result = measure(dir, *written);
        if (!result) {
            fmt::print(stderr, "{}: {}\n", text, result.error().to_string());
            return 1;
        }
        double qcow2 = std::max(0.0, result->qcow2_median - result->qemu_img_start);
        fmt::print("| {} | {:.2f} ms | {:.2f} ms | {:.2f} ms | {:.1f}x |\n", format_size(*written), result->kasou_median, result->kasou_max, qcow2,
            qcow2 / result->kasou_median);
        std::fflush(stdout);
    }
    return 0;
}
