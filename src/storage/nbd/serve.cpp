#include "storage/nbd/serve.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/sys_file.h"
#include "base/sys_signal.h"
#include "base/try.h"
#include "storage/pool/pool_handle.h"

namespace kasou::storage::nbd {

namespace {

// Refuses writes to a device that is otherwise writable (--read-only); all reads pass through.
class ReadOnlyView final : public BlockDevice {
public:
    explicit ReadOnlyView(std::shared_ptr<BlockDevice> device)
        : m_device(std::move(device))
    {
    }
    u64 size() const override { return m_device->size(); }
    bool read_only() const override { return true; }
    u32 logical_block_size() const override { return m_device->logical_block_size(); }
    ErrorOr<void> read(u64 offset, std::span<u8> buffer) override { return m_device->read(offset, buffer); }
    ErrorOr<void> write(u64, std::span<u8 const>, bool) override { return refuse(); }
    ErrorOr<void> flush() override { return {}; }
    ErrorOr<void> discard(u64, u64) override { return refuse(); }
    ErrorOr<void> write_zeroes(u64, u64, bool) override { return refuse(); }
    ErrorOr<std::vector<Extent>> block_status(u64 offset, u64 length) override { return m_device->block_status(offset, length); }

private:
    static ErrorOr<void> refuse() { return make_errno_error(EPERM, "export is read-only"); }
    std::shared_ptr<BlockDevice> m_device;
};

} // namespace

ErrorOr<std::pair<std::string, std::string>> parse_file_export(std::string const& text)
{
    auto equals = text.find('=');
    if (equals != std::string::npos) {
        if (equals == 0 || equals + 1 == text.size())
            return make_error(fmt::format("--file '{}': expected NAME=PATH or PATH", text));
        return std::pair { text.substr(0, equals), text.substr(equals + 1) };
    }
    auto slash = text.find_last_of('/');
    std::string name = slash == std::string::npos ? text : text.substr(slash + 1);
    if (name.empty())
        return make_error(fmt::format("--file '{}' names no file", text));
    return std::pair { name, text };
}

ErrorOr<void> serve(ServeSpec const& spec)
{
    if (spec.volumes.empty() && spec.files.empty() && spec.pools.empty())
        return make_error("nothing to serve: name at least one POOL/VOL or --file");

    // Before any thread starts (the pools start background threads when opened, the server one
    // per connection).
    Fd stop = TRY(sys::termination_signalfd());

    std::vector<Export> exports;
    for (auto const& text : spec.files) {
        auto [name, path] = TRY(parse_file_export(text));
        auto options = spec.file_options;
        options.read_only = options.read_only || spec.read_only;
        auto device = RawFileDevice::open(path, options);
        if (!device)
            return tl::unexpected(device.error().with_prefix(fmt::format("--file {}", path)));
        exports.push_back({ .name = name, .device = std::move(*device) });
    }
    // Each pool is opened once, however many of its volumes are exported, and stays open (locked)
    // until the server has stopped; the handles close (commit) when this function returns.
    std::vector<PoolHandle> pools;
    for (auto const& text : spec.volumes) {
        auto names = TRY(parse_volume_path(text));
        auto const& pool_name = names.first;
        auto const& volume_name = names.second;
        auto pool = std::find_if(pools.begin(), pools.end(), [&](PoolHandle const& handle) { return handle.name() == pool_name; });
        if (pool == pools.end()) {
            pools.push_back(TRY(PoolHandle::open(spec.state_dir, pool_name, PoolHandle::Control::Answer)));
            pool = pools.end() - 1;
        }
        auto device = pool->volume(volume_name);
        if (!device)
            return tl::unexpected(device.error().with_prefix(text));
        exports.push_back({ .name = volume_name, .device = std::move(*device) });
    }
    for (auto const& pool_name : spec.pools) {
        pools.push_back(TRY(PoolHandle::open(spec.state_dir, pool_name, PoolHandle::Control::Answer)));
        for (auto const& volume_name : pools.back().volume_names())
            exports.push_back({ .name = volume_name, .device = TRY(pools.back().volume(volume_name)) });
        if (pools.back().volume_names().empty())
            return make_error(ErrorKind::NotFound, fmt::format("pool {} has no volumes to serve", pool_name));
    }
    if (spec.read_only) {
        for (auto& entry : exports) {
            if (!entry.device->read_only())
                entry.device = std::make_shared<ReadOnlyView>(std::move(entry.device));
        }
    }

    // After the last pool is opened: an attachment keeps a reference to its pool.
    std::vector<std::shared_ptr<void>> attachments;
    if (spec.attach_to_pool) {
        for (auto& pool : pools)
            attachments.push_back(TRY(spec.attach_to_pool(pool)));
    }
    auto server = TRY(Server::create(std::move(exports), spec.address, spec.server));
    if (spec.owner_only_socket) {
        std::error_code restricted;
        std::filesystem::permissions(spec.address.unix_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, restricted);
        if (restricted)
            return make_errno_error(restricted.value(), fmt::format("chmod {}", spec.address.unix_path));
    }
    if (spec.ready_fd >= 0) {
        Fd ready(spec.ready_fd);
        TRY(sys::write_exact(ready.get(), "ready\n", 6));
    }
    TRY(server->run(stop.get()));
    attachments.clear();
    for (auto& pool : pools)
        TRY(pool.close());
    return {};
}

} // namespace kasou::storage::nbd
