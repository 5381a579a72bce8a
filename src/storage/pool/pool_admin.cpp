#include "storage/pool/pool_admin.h"

#include <algorithm>
#include <charconv>
#include <fcntl.h>
#include <filesystem>

#include <fmt/format.h>

#include "base/utf8.h"
#include "base/try.h"
#include "storage/pool/disk_set.h"
#include "storage/pool/file_member_disk.h"
#include "storage/pool/member_label.h"
#include "storage/pool/pool_control.h"
#include "storage/pool/registry.h"
#include "storage/pool/thin_pool.h"

namespace kasou::storage {

ErrorOr<SegmentKind> parse_layout(std::string_view text)
{
    if (text == "linear")
        return SegmentKind::Linear;
    if (text == "striped")
        return SegmentKind::Striped;
    if (text == "mirror")
        return SegmentKind::Mirror;
    return make_error(fmt::format("unknown layout '{}': use linear, striped or mirror", text));
}

namespace {

// The registry keeps absolute paths, so a pool opens from any working directory. It is JSON, so
// a path that is not UTF-8 (file names are bytes) cannot be recorded: refused before any disk is
// touched.
ErrorOr<std::vector<std::string>> absolute_paths(std::vector<std::string> const& paths)
{
    std::vector<std::string> result;
    for (auto const& path : paths) {
        if (auto bad = find_invalid_utf8(path))
            return make_error(fmt::format("disk path {} is not valid UTF-8 (byte {:#04x} at offset {}), and the registry can record only UTF-8: "
                                          "give the disk a UTF-8 name (a symbolic link will do)",
                path, static_cast<unsigned char>(path[*bad]), *bad));
        std::error_code error;
        auto absolute = std::filesystem::absolute(path, error);
        result.push_back(error ? path : absolute.lexically_normal().string());
    }
    return result;
}

std::vector<MemberDisk const*> member_disks(ThinPool& pool)
{
    std::vector<MemberDisk const*> disks;
    for (auto const& member : pool.layout().members())
        disks.push_back(member->disk.get());
    return disks;
}

// Opens (and so claims) the disks, refusing one given twice or already a member of pool.
ErrorOr<std::vector<std::unique_ptr<MemberDisk>>> open_disks(std::vector<std::string> const& paths, ThinPool* pool = nullptr)
{
    TRY(pool ? check_distinct_disks(paths, pool->name(), member_disks(*pool)) : check_distinct_disks(paths));
    std::vector<std::unique_ptr<MemberDisk>> disks;
    for (auto const& path : paths)
        disks.push_back(TRY(FileMemberDisk::open(path)));
    return disks;
}

} // namespace

ErrorOr<void> create_pool(std::string const& state_dir, CreatePoolOptions const& options)
{
    TRY(validate_name(options.name, "pool"));
    auto paths = TRY(absolute_paths(options.disks));
    if (Registry::find(state_dir, options.name))
        return make_error(ErrorKind::AlreadyExists, fmt::format("a pool named '{}' already exists in {}", options.name, state_dir));
    Fd lock = TRY(Registry::lock_pool(state_dir, options.name));
    auto disks = TRY(open_disks(options.disks));
    auto pool = TRY(ThinPool::create(options.name, options.layout, options.stripe_size, std::move(disks), options.force));
    TRY(pool->close());
    return Registry::modify(state_dir, [&](std::vector<PoolRecord>& records) -> ErrorOr<void> {
        if (std::any_of(records.begin(), records.end(), [&](auto const& r) { return r.name == options.name; }))
            return make_error(ErrorKind::AlreadyExists, fmt::format("a pool named '{}' was registered meanwhile", options.name));
        records.push_back({ options.name, pool->uuid().to_string(), paths });
        return {};
    });
}

ErrorOr<void> grow_open_pool(ThinPool& pool, std::string const& state_dir, std::string const& name, std::vector<std::string> const& disks,
    bool force)
{
    auto paths = TRY(absolute_paths(disks));
    auto opened = TRY(open_disks(paths, &pool));
    TRY(pool.grow(std::move(opened), force));
    auto recorded = Registry::modify(state_dir, [&](std::vector<PoolRecord>& records) -> ErrorOr<void> {
        for (auto& record : records) {
            if (record.name == name)
                record.disks.insert(record.disks.end(), paths.begin(), paths.end());
        }
        return {};
    });
    if (!recorded)
        return make_error(ErrorKind::Io, fmt::format("pool {} grew onto the disks, but the registry could not record them ({}): run 'kasou pool import' "
                                      "with all of the pool's disks once this process has let it go",
            name, recorded.error().to_string()));
    return {};
}

ErrorOr<void> add_disks(std::string const& state_dir, std::string const& name, std::vector<std::string> const& disks, bool force)
{
    if (auto answered = ask_holder_to_add(state_dir, name, TRY(absolute_paths(disks)), force))
        return *answered;
    auto handle = TRY(PoolHandle::open(state_dir, name));
    TRY(grow_open_pool(handle.pool(), state_dir, name, disks, force));
    return handle.close();
}

ErrorOr<std::string> import_pool(std::string const& state_dir, std::vector<std::string> const& disks)
{
    auto paths = TRY(absolute_paths(disks));
    auto pool = TRY(ThinPool::open(TRY(open_disks(disks))));
    std::string name = pool->name();
    std::string uuid = pool->uuid().to_string();
    TRY(pool->close());
    TRY(Registry::modify(state_dir, [&](std::vector<PoolRecord>& records) -> ErrorOr<void> {
        for (auto& record : records) {
            if (record.name != name)
                continue;
            if (record.uuid != uuid)
                return make_error(ErrorKind::AlreadyExists, fmt::format("another pool named '{}' ({}) is already registered; destroy or rename it first", name, record.uuid));
            record.disks = paths;
            return {};
        }
        records.push_back({ name, uuid, paths });
        return {};
    }));
    return name;
}

ErrorOr<void> destroy_pool(std::string const& state_dir, std::string const& name, bool force)
{
    auto handle = TRY(PoolHandle::open(state_dir, name));
    auto volumes = handle.pool().volumes();
    if (!volumes.empty() && !force)
        return make_error(ErrorKind::Busy, fmt::format("pool {} still has {} volume(s) ({}...); remove them or pass --force", name, volumes.size(), volumes.front().name));
    TRY(handle.pool().close());
    Block zero {};
    for (auto const& member : handle.pool().layout().members()) {
        if (!member->disk)
            continue;
        for (u64 offset = 0; offset < MEMBER_HEADER_SIZE; offset += BLOCK_SIZE)
            TRY(member->disk->write(offset, zero));
        TRY(member->disk->flush());
    }
    TRY(handle.close());
    return Registry::modify(state_dir, [&](std::vector<PoolRecord>& records) -> ErrorOr<void> {
        std::erase_if(records, [&](auto const& record) { return record.name == name; });
        return {};
    });
}

ErrorOr<u32> repair_pool(std::string const& state_dir, std::string const& name, std::string const& replace, std::string const& with,
    ProgressFunction const& progress)
{
    auto handle = TRY(PoolHandle::open(state_dir, name));
    auto& pool = handle.pool();
    if (replace.empty()) {
        u32 count = TRY(pool.resync_failed_members(progress));
        TRY(handle.close());
        return count;
    }
    if (with.empty())
        return make_error("--replace needs --with DISK, the disk to put in its place");
    auto const& members = pool.layout().members();
    u32 index = static_cast<u32>(members.size());
    u32 parsed = 0;
    auto [end, error] = std::from_chars(replace.data(), replace.data() + replace.size(), parsed);
    if (error == std::errc {} && end == replace.data() + replace.size() && parsed < members.size())
        index = parsed;
    auto const record = TRY(Registry::find(state_dir, name));
    std::string replace_path = TRY(absolute_paths({ replace })).front();
    std::string with_path = TRY(absolute_paths({ with })).front();
    for (u32 i = 0; i < members.size() && index == members.size(); ++i) {
        if (members[i]->disk && members[i]->disk->name() == replace_path)
            index = i;
    }
    if (index == members.size()) {
        // A disk that was missing at open has no name in the pool: find it in the registry.
        if (std::find(record.disks.begin(), record.disks.end(), replace_path) != record.disks.end()) {
            for (u32 i = 0; i < members.size() && index == members.size(); ++i) {
                if (!members[i]->disk)
                    index = i;
            }
        }
    }
    if (index == members.size())
        return make_error(ErrorKind::NotFound, fmt::format("pool {} has no member '{}' (give its index from 'kasou pool status' or its disk path)", name, replace));
    std::string old_path = members[index]->disk ? members[index]->disk->name() : replace_path;
    auto disk = std::move(TRY(open_disks({ with }, &pool)).front());
    TRY(pool.replace_member(index, std::move(disk), progress));
    TRY(handle.close());
    TRY(Registry::modify(state_dir, [&](std::vector<PoolRecord>& records) -> ErrorOr<void> {
        for (auto& r : records) {
            if (r.name != name)
                continue;
            std::erase(r.disks, old_path);
            r.disks.push_back(with_path);
        }
        return {};
    }));
    return 1;
}

} // namespace kasou::storage
