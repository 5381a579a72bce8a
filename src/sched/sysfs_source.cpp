#include "sched/sysfs_source.h"

#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "base/sys_path.h"
#include "base/sys_process.h"
#include "base/try.h"
#include "sched/sysfs_reader.h"

namespace kasou::sched {

namespace fs = std::filesystem;

namespace {

// A captured tree is ten thousand small files: unpack it in memory (/dev/shm) unless TMPDIR says
// where, and fall back to the temporary directory.
ErrorOr<std::string> make_extraction_dir()
{
    char const* tmpdir = std::getenv("TMPDIR");
    if (!(tmpdir && *tmpdir)) {
        if (auto in_memory = sys::make_temp_dir("/dev/shm/kasou-sysfs-XXXXXX"))
            return in_memory;
    }
    std::error_code error;
    return sys::make_temp_dir((fs::temp_directory_path(error) / "kasou-sysfs-XXXXXX").string());
}

} // namespace

ErrorOr<SysfsSource> SysfsSource::open(std::string const& path)
{
    SysfsSource source;
    if (path.empty()) {
        source.m_sys_dir = "/sys";
        return source;
    }
    std::error_code error;
    if (fs::is_regular_file(path, error)) {
        source.m_extracted = TRY(make_extraction_dir());
        int status = TRY(sys::spawn_and_wait({ "tar", "-xf", path, "-C", source.m_extracted }));
        if (status != 0)
            return make_error(ErrorKind::Io, fmt::format("{}: tar could not unpack it (exit status {})", path, status));
        source.m_sys_dir = TRY(locate_sys_dir(source.m_extracted).map_error([&](Error const& e) { return e.with_prefix(path); }));
        return source;
    }
    if (!fs::exists(path, error))
        return make_error(ErrorKind::NotFound, fmt::format("{}: no such file or directory", path));
    source.m_sys_dir = TRY(locate_sys_dir(path));
    return source;
}

SysfsSource::~SysfsSource() { remove_extracted(); }

SysfsSource::SysfsSource(SysfsSource&& other) noexcept
    : m_sys_dir(std::move(other.m_sys_dir))
    , m_extracted(std::exchange(other.m_extracted, {}))
{
}

SysfsSource& SysfsSource::operator=(SysfsSource&& other) noexcept
{
    if (this != &other) {
        remove_extracted();
        m_sys_dir = std::move(other.m_sys_dir);
        m_extracted = std::exchange(other.m_extracted, {});
    }
    return *this;
}

void SysfsSource::remove_extracted()
{
    if (m_extracted.empty())
        return;
    std::error_code error;
    fs::remove_all(m_extracted, error);
    m_extracted.clear();
}

ErrorOr<Topology> SysfsSource::read() const { return read_topology(m_sys_dir); }

ErrorOr<Topology> load_topology(std::string const& path)
{
    auto source = TRY(SysfsSource::open(path));
    return source.read();
}

} // namespace kasou::sched
