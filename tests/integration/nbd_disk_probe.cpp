// A disk user without a VM, for the storage integration tests: opens a disk the way `kasou run`
// does — nbd:URI through the NBD client, vol:POOL/VOL through the process serving the pool
// (started if none runs) — and runs a few commands on it.
//
//   nbd_disk_probe KASOU STATE_DIR DISK COMMAND...
//     write OFFSET LENGTH BYTE   write LENGTH bytes of BYTE (hex) at OFFSET
//     fua OFFSET LENGTH BYTE     the same, with FUA
//     read OFFSET LENGTH BYTE    read and check every byte is BYTE
//     zero OFFSET LENGTH         write zeroes
//     flush
//     wait PATH                  wait until PATH exists (to line processes up)
//     size                       print the size
// Exit status 0 when every command succeeded; 1 with the error on stderr otherwise.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/try.h"
#include "storage/nbd/client_device.h"
#include "storage/nbd/served_pool.h"

using namespace kasou;
using namespace kasou::storage;

namespace {

u64 number(char const* text, int base = 0) { return std::strtoull(text, nullptr, base); }

ErrorOr<void> run(std::shared_ptr<BlockDevice> const& disk, std::vector<char*> commands)
{
    for (size_t i = 0; i < commands.size(); ++i) {
        std::string command = commands[i];
        auto arg = [&](size_t n) -> char const* { return i + n < commands.size() ? commands[i + n] : "0"; };
        if (command == "write" || command == "fua") {
            std::vector<u8> data(number(arg(2)), static_cast<u8>(number(arg(3), 16)));
            TRY(disk->write(number(arg(1)), data, command == "fua"));
            i += 3;
        } else if (command == "read") {
            std::vector<u8> data(number(arg(2)));
            TRY(disk->read(number(arg(1)), data));
            u8 expected = static_cast<u8>(number(arg(3), 16));
            for (size_t at = 0; at < data.size(); ++at) {
                if (data[at] != expected)
                    return make_error(fmt::format("byte {:#x} at offset {} is not {:#x}", data[at], number(arg(1)) + at, expected));
            }
            i += 3;
        } else if (command == "zero") {
            TRY(disk->write_zeroes(number(arg(1)), number(arg(2)), true));
            i += 2;
        } else if (command == "flush") {
            TRY(disk->flush());
        } else if (command == "wait") {
            while (!std::filesystem::exists(arg(1)))
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            i += 1;
        } else if (command == "size") {
            std::printf("%llu\n", static_cast<unsigned long long>(disk->size()));
        } else {
            return make_error(fmt::format("unknown command '{}'", command));
        }
    }
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 4) {
        std::fprintf(stderr, "usage: nbd_disk_probe KASOU STATE_DIR DISK COMMAND...\n");
        return 2;
    }
    std::string kasou = argv[1];
    std::string state_dir = argv[2];
    std::string disk_text = argv[3];
    std::optional<nbd::PoolLease> lease;
    ErrorOr<std::shared_ptr<BlockDevice>> disk = make_error("no disk");
    if (disk_text.starts_with("nbd:")) {
        auto uri = nbd::NbdUri::parse(disk_text.substr(4));
        disk = uri.and_then([](nbd::NbdUri const& parsed) { return nbd::NbdClientDevice::connect(parsed); }).map([](auto device) {
            return std::shared_ptr<BlockDevice>(std::move(device));
        });
    } else if (disk_text.starts_with("vol:")) {
        auto names = disk_text.substr(4);
        auto slash = names.find('/');
        auto pool = names.substr(0, slash);
        auto taken = nbd::PoolLease::take(state_dir, pool);
        if (!taken) {
            std::fprintf(stderr, "%s\n", taken.error().to_string().c_str());
            return 1;
        }
        lease.emplace(std::move(*taken));
        disk = nbd::attach_served_volume(state_dir, pool, names.substr(slash + 1), kasou);
    }
    if (!disk) {
        std::fprintf(stderr, "%s: %s\n", disk_text.c_str(), disk.error().to_string().c_str());
        return 1;
    }
    auto result = run(*disk, { argv + 4, argv + argc });
    disk->reset();
    if (!result) {
        std::fprintf(stderr, "%s: %s\n", disk_text.c_str(), result.error().to_string().c_str());
        return 1;
    }
    return 0;
}
