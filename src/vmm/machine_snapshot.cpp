// Machine::save_snapshot and Machine::restore: a snapshot directory holds `memory` (the guest's
// RAM, its regions one after the other, zero pages left as holes) and `state` (docs/snapshot.md).

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"
#include "kvm/kvm_engine.h"
#include "vmm/machine.h"
#include "vmm/snapshot_state.h"

namespace kasou::vmm {

namespace {

constexpr char const* MEMORY_FILE = "memory";
constexpr char const* STATE_FILE = "state";
constexpr u64 PAGE = 4096;

bool all_zero(u8 const* bytes, u64 size) { return bytes[0] == 0 && std::memcmp(bytes, bytes + 1, size - 1) == 0; }

// Writes guest RAM at the file's offsets, skipping zero pages (the file is sized first, so they
// read back as zeros) to keep the file sparse.
ErrorOr<void> write_memory(memory::GuestMemory const& memory, std::string const& path)
{
    auto fd = TRY(sys::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    TRY(sys::ftruncate(fd.get(), memory.size()));
    u64 file_offset = 0;
    for (auto const& region : memory.regions()) {
        u8 const* base = region.mapping.data();
        u64 run_start = 0, run_length = 0;
        auto flush = [&]() -> ErrorOr<void> {
            if (run_length)
                TRY(sys::pwrite_exact(fd.get(), base + run_start, run_length, file_offset + run_start));
            run_length = 0;
            return {};
        };
        for (u64 page = 0; page < region.size(); page += PAGE) {
            if (all_zero(base + page, PAGE)) {
                TRY(flush());
                continue;
            }
            if (!run_length)
                run_start = page;
            run_length += PAGE;
        }
        TRY(flush());
        file_offset += region.size();
    }
    TRY(sys::fsync(fd.get()));
    return {};
}

ErrorOr<void> write_state(std::vector<u8> const& bytes, std::string const& path)
{
    auto fd = TRY(sys::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    TRY(sys::write_exact(fd.get(), bytes.data(), bytes.size()));
    TRY(sys::fsync(fd.get()));
    return {};
}

std::string parent_of(std::string const& directory)
{
    auto parent = std::filesystem::path(directory).lexically_normal().parent_path().string();
    return parent.empty() ? "." : parent;
}

} // namespace

ErrorOr<void> Machine::save_snapshot(std::string const& directory)
{
    {
        std::lock_guard lock(m_state_lock);
        if (!m_paused)
            return make_error(ErrorKind::Busy, "a snapshot is taken only while the machine is paused");
    }
    if (m_pci->device_count() > 0)
        return make_error(ErrorKind::Unsupported,
            fmt::format("this machine has {} virtio device(s), whose state snapshots do not hold yet; a machine with none (--no-rng, "
                        "no --disk, --net, --vsock or --console virtio) can be snapshotted",
                m_pci->device_count()));
    if (directory.empty())
        return make_error("snapshot directory: empty path");
    auto trimmed = std::filesystem::path(directory).lexically_normal();
    if (trimmed.filename().empty())
        trimmed = trimmed.parent_path();
    std::string target = trimmed.string();

    SnapshotState state;
    state.config = m_config;
    state.memory_size = m_memory.size();
    state.vcpus = TRY(vcpu_states());
    if (m_split_irqchip)
        state.irqchip = m_split_irqchip->state();
    else
        state.irqchip = TRY(m_vm->kernel_irqchip_state());
    state.clock = TRY(m_vm->clock());
    state.uart = m_serial->state();
    state.rtc = m_rtc->state();
    state.i8042 = m_i8042->state();
    auto bytes = encode_snapshot_state(state);

    // A new directory beside the target, filled, then swapped in: the target never holds half a
    // snapshot, and an older one there stays whole until the new one is complete.
    auto staging = TRY(sys::make_temp_dir(fmt::format("{}/.{}.saving-XXXXXX", parent_of(target), trimmed.filename().string())));
    auto written = [&]() -> ErrorOr<void> {
        TRY(write_memory(m_memory, staging + "/" + MEMORY_FILE));
        TRY(write_state(bytes, staging + "/" + STATE_FILE));
        std::error_code ignored;
        if (std::filesystem::exists(target, ignored)) {
            if (!std::filesystem::exists(target + "/" + STATE_FILE, ignored))
                return make_error(ErrorKind::AlreadyExists, fmt::format("{} exists and is not a snapshot: not replaced", target));
            TRY(sys::rename_exchange(staging, target));
        } else
            TRY(sys::rename(staging, target));
        return {};
    }();
    std::error_code ignored;
    std::filesystem::remove_all(staging, ignored); // the old snapshot after a swap, or what failed
    if (!written)
        return tl::unexpected(written.error().with_prefix(fmt::format("snapshot {}", target)));
    return {};
}

ErrorOr<std::unique_ptr<Machine>> Machine::restore(std::string const& directory, RestoreOptions const& options)
{
    auto in_snapshot = [&](Error const& error) { return error.with_prefix(fmt::format("snapshot {}", directory)); };
    std::string state_path = directory + "/" + STATE_FILE;
    auto state_fd = TRY(sys::open(state_path, O_RDONLY | O_CLOEXEC).map_error(in_snapshot));
    u64 state_size = TRY(sys::file_size(state_fd.get()).map_error(in_snapshot));
    if (state_size > SNAPSHOT_MAX_STATE_SIZE)
        return make_error(fmt::format("snapshot {}: state file of {} bytes is larger than any kasou writes", directory, state_size));
    std::vector<u8> bytes(state_size);
    TRY(sys::pread_exact(state_fd.get(), bytes.data(), bytes.size(), 0).map_error(in_snapshot));
    auto state = TRY(decode_snapshot_state(bytes).map_error(in_snapshot));

    if (options.cpus && *options.cpus != state.config.cpus)
        return make_error(fmt::format("snapshot {} has {} vCPUs, {} were asked for", directory, state.config.cpus, *options.cpus));
    if (options.memory && *options.memory != state.config.memory)
        return make_error(fmt::format("snapshot {} has {} bytes of memory, {} were asked for", directory, state.config.memory, *options.memory));
    auto memory_fd = TRY(sys::open(directory + "/" + MEMORY_FILE, O_RDONLY | O_CLOEXEC).map_error(in_snapshot));
    if (u64 size = TRY(sys::file_size(memory_fd.get()).map_error(in_snapshot)); size != state.memory_size)
        return make_error(fmt::format("snapshot {}: memory file holds {} bytes, the machine has {}", directory, size, state.memory_size));

    MachineConfig config = state.config;
    config.irqchip = std::holds_alternative<SplitIrqchip::State>(state.irqchip) ? engine::InterruptControllers::Split
                                                                                 : engine::InterruptControllers::InKernel;
    if (options.irqchip && *options.irqchip != *config.irqchip)
        return make_error(fmt::format("snapshot {} was taken with --irqchip {}, and --irqchip {} was asked for", directory,
            *config.irqchip == engine::InterruptControllers::Split ? "split" : "kernel",
            *options.irqchip == engine::InterruptControllers::Split ? "split" : "kernel"));
    if (options.serial)
        config.serial = *options.serial;
    if (options.state_dir)
        config.state_dir = *options.state_dir;
    config.start_time = options.start_time;

    std::unique_ptr<engine::Engine> engine = TRY(kvm::KvmEngine::open());
    TRY(config.validate(host_memory(), static_cast<int>(engine->max_vcpus())));
    auto memory = TRY(memory::GuestMemory::map_file(memory_fd.get(), state.memory_size).map_error(in_snapshot));
    auto machine = TRY(build(std::move(config), std::move(engine), std::move(memory)));
    TRY(machine->restore_state(state).map_error(in_snapshot));
    return machine;
}

ErrorOr<void> Machine::restore_state(SnapshotState const& state)
{
    if (m_pci->device_count() > 0)
        return make_error(ErrorKind::Unsupported, "the snapshot's machine has virtio devices, which restore does not handle yet");
    for (size_t i = 0; i < m_vcpus.size(); ++i)
        TRY(m_vcpus[i]->set_state(state.vcpus[i]).map_error([&](Error const& error) { return error.with_prefix(fmt::format("vCPU {}", i)); }));
    if (m_split_irqchip) {
        TRY(m_split_irqchip->set_state(std::get<SplitIrqchip::State>(state.irqchip)));
        TRY(m_routing->commit());
    } else
        TRY(m_vm->set_kernel_irqchip_state(std::get<engine::KernelIrqchipState>(state.irqchip)));
    TRY(m_vm->set_clock(state.clock));
    TRY(m_serial->set_state(state.uart));
    m_rtc->set_state(state.rtc);
    m_i8042->set_state(state.i8042);
    return {};
}

} // namespace kasou::vmm
