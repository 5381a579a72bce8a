#pragma once

#include <string>

#include "base/error.h"
#include "sched/topology.h"

namespace kasou::sched {

// Where a topology comes from: the live /sys, an extracted sysfs tree, or a captured archive
// (anything `tar` can unpack, e.g. .tar.bz2), which is unpacked into a private temporary directory
// (under TMPDIR if set, else /dev/shm, else /tmp) that lives as long as this object. Move-only; the directory is removed on destruction.
class SysfsSource {
public:
    // path: "" for the live host's /sys, else a directory or an archive file.
    static ErrorOr<SysfsSource> open(std::string const& path);
    ~SysfsSource();
    SysfsSource(SysfsSource&& other) noexcept;
    SysfsSource& operator=(SysfsSource&& other) noexcept;
    SysfsSource(SysfsSource const&) = delete;
    SysfsSource& operator=(SysfsSource const&) = delete;

    // The directory that holds devices/system/cpu.
    std::string const& sys_dir() const { return m_sys_dir; }
    ErrorOr<Topology> read() const;

private:
    SysfsSource() = default;
    void remove_extracted();

    std::string m_sys_dir;
    std::string m_extracted; // temporary directory to remove, or ""
};

// Shorthand: SysfsSource::open(path) then read().
ErrorOr<Topology> load_topology(std::string const& path);

} // namespace kasou::sched
