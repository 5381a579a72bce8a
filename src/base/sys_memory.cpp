#include "base/sys_memory.h"

#include <cerrno>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace kasou::sys {

ErrorOr<Fd> memfd_create(char const* name, unsigned flags)
{
    int fd = ::memfd_create(name, flags | MFD_CLOEXEC);
    if (fd < 0)
        return make_errno_error(errno, "memfd_create");
    return Fd(fd);
}

ErrorOr<void*> mmap(void* address, u64 size, int prot, int flags, int fd, off_t offset)
{
    void* result = ::mmap(address, size, prot, flags, fd, offset);
    if (result == MAP_FAILED)
        return make_errno_error(errno, "mmap");
    return result;
}

ErrorOr<void> mbind(void* address, u64 length, int mode, unsigned long const* nodemask, unsigned long max_node, unsigned flags)
{
    if (::syscall(SYS_mbind, address, length, mode, nodemask, max_node, flags) < 0)
        return make_errno_error(errno, "mbind");
    return {};
}

} // namespace kasou::sys
