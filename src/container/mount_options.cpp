#include "container/mount_options.h"

#include <string_view>
#include <sys/mount.h>

namespace kasou::container {

namespace {

struct FlagOption {
    std::string_view name;
    bool clear;
    unsigned long flag;
};

// mount(8)'s names for the flags of mount(2).
constexpr FlagOption FLAG_OPTIONS[] = {
    { "ro", false, MS_RDONLY },
    { "rw", true, MS_RDONLY },
    { "nosuid", false, MS_NOSUID },
    { "suid", true, MS_NOSUID },
    { "nodev", false, MS_NODEV },
    { "dev", true, MS_NODEV },
    { "noexec", false, MS_NOEXEC },
    { "exec", true, MS_NOEXEC },
    { "sync", false, MS_SYNCHRONOUS },
    { "async", true, MS_SYNCHRONOUS },
    { "dirsync", false, MS_DIRSYNC },
    { "remount", false, MS_REMOUNT },
    { "mand", false, MS_MANDLOCK },
    { "nomand", true, MS_MANDLOCK },
    { "noatime", false, MS_NOATIME },
    { "atime", true, MS_NOATIME },
    { "nodiratime", false, MS_NODIRATIME },
    { "diratime", true, MS_NODIRATIME },
    { "relatime", false, MS_RELATIME },
    { "norelatime", true, MS_RELATIME },
    { "strictatime", false, MS_STRICTATIME },
    { "nostrictatime", true, MS_STRICTATIME },
    { "lazytime", false, MS_LAZYTIME },
    { "nolazytime", true, MS_LAZYTIME },
    { "iversion", false, MS_I_VERSION },
    { "noiversion", true, MS_I_VERSION },
    { "silent", false, MS_SILENT },
    { "loud", true, MS_SILENT },
    { "defaults", false, 0 },
};

} // namespace

unsigned long propagation_flags(std::string const& name)
{
    std::pair<std::string_view, unsigned long> const table[] = {
        { "private", MS_PRIVATE },
        { "rprivate", MS_PRIVATE | MS_REC },
        { "shared", MS_SHARED },
        { "rshared", MS_SHARED | MS_REC },
        { "slave", MS_SLAVE },
        { "rslave", MS_SLAVE | MS_REC },
        { "unbindable", MS_UNBINDABLE },
        { "runbindable", MS_UNBINDABLE | MS_REC },
    };
    for (auto const& [known, flags] : table) {
        if (known == name)
            return flags;
    }
    return 0;
}

MountOptions parse_mount_options(std::vector<std::string> const& options)
{
    MountOptions out;
    for (auto const& option : options) {
        if (option == "bind" || option == "rbind") {
            out.bind = true;
            out.recursive = out.recursive || option == "rbind";
            continue;
        }
        if (auto propagation = propagation_flags(option)) {
            out.propagation = propagation;
            continue;
        }
        bool known = false;
        for (auto const& flag : FLAG_OPTIONS) {
            if (flag.name == option) {
                out.flags = flag.clear ? out.flags & ~flag.flag : out.flags | flag.flag;
                known = true;
                break;
            }
        }
        if (!known)
            out.data += (out.data.empty() ? "" : ",") + option;
    }
    return out;
}

} // namespace kasou::container
