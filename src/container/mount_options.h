#pragma once

// mounts[].options of config.json split the way mount(2) takes them: flags to set, flags to clear,
// propagation flags (applied by a second call) and the file-system data string.

#include <string>
#include <vector>

namespace kasou::container {

struct MountOptions {
    unsigned long flags { 0 };
    unsigned long propagation { 0 }; // MS_SHARED / MS_SLAVE / MS_PRIVATE / MS_UNBINDABLE, maybe | MS_REC
    bool bind { false };
    bool recursive { false }; // rbind
    std::string data; // what mount(2) passes to the file system ("mode=755,size=64k")
};

MountOptions parse_mount_options(std::vector<std::string> const& options);
// A rootfsPropagation value ("rslave") as mount(2) flags; 0 for "".
unsigned long propagation_flags(std::string const& name);

} // namespace kasou::container
