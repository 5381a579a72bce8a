#include "storage/io/disk_identity.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::storage {

std::string DiskIdentity::to_string() const
{
    if (inode == 0)
        return fmt::format("block device {}:{}", major(device), minor(device));
    return fmt::format("file {}:{} inode {}", major(device), minor(device), inode);
}

ErrorOr<DiskIdentity> disk_identity(int fd, std::string const& name)
{
    struct stat st { };
    TRY(sys::fstat(fd, st));
    if (S_ISREG(st.st_mode))
        return DiskIdentity { st.st_dev, st.st_ino };
    if (!S_ISBLK(st.st_mode))
        return make_error(fmt::format("{} is neither a regular file nor a block device", name));
    if (major(st.st_rdev) == LOOP_MAJOR) {
        // The kernel reports the backing file's device in the encoding stat(2) uses for st_dev.
        loop_info64 info { };
        if (sys::ioctl(fd, LOOP_GET_STATUS64, &info, "LOOP_GET_STATUS64"))
            return DiskIdentity { info.lo_device, info.lo_inode };
        // ENXIO: no file is bound to it; the loop device is then a disk of its own.
    }
    return DiskIdentity { st.st_rdev, 0 };
}

ErrorOr<DiskIdentity> disk_identity(std::string const& path)
{
    // O_NONBLOCK: a FIFO given by mistake must not hang the open; it is refused by fstat.
    Fd fd = TRY(sys::open(path, O_RDONLY | O_NONBLOCK));
    return disk_identity(fd.get(), path);
}

} // namespace kasou::storage
