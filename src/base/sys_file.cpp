#include "base/sys_file.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/sys_retry.h"
#include "base/try.h"

namespace kasou::sys {

ErrorOr<Fd> open(std::string const& path, int flags, mode_t mode)
{
    int fd = detail::retry_on_eintr([&] { return ::open(path.c_str(), flags | O_CLOEXEC, mode); });
    if (fd < 0)
        return make_errno_error(errno, fmt::format("open {}", path));
    return Fd(fd);
}

ErrorOr<int> ioctl(int fd, unsigned long request, char const* name)
{
    int rc = detail::retry_on_eintr([&] { return ::ioctl(fd, request, 0); });
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<int> ioctl_interruptible(int fd, unsigned long request, char const* name)
{
    int rc = ::ioctl(fd, request, 0);
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<int> ioctl(int fd, unsigned long request, unsigned long argument, char const* name)
{
    int rc = detail::retry_on_eintr([&] { return ::ioctl(fd, request, argument); });
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<int> ioctl(int fd, unsigned long request, void const* argument, char const* name)
{
    int rc = detail::retry_on_eintr([&] { return ::ioctl(fd, request, argument); });
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<size_t> read(int fd, void* buffer, size_t size)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::read(fd, buffer, size); });
    if (n < 0)
        return make_errno_error(errno, "read");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> write(int fd, void const* buffer, size_t size)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::write(fd, buffer, size); });
    if (n < 0)
        return make_errno_error(errno, "write");
    return static_cast<size_t>(n);
}

ErrorOr<void> write_exact(int fd, void const* buffer, size_t size)
{
    auto const* bytes = static_cast<u8 const*>(buffer);
    while (size > 0) {
        size_t n = TRY(write(fd, bytes, size));
        if (n == 0)
            return make_errno_error(EIO, "write");
        bytes += n;
        size -= n;
    }
    return {};
}

ErrorOr<size_t> pread(int fd, void* buffer, size_t size, u64 offset)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::pread(fd, buffer, size, static_cast<off_t>(offset)); });
    if (n < 0)
        return make_errno_error(errno, "pread");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> pread_nowait(int fd, void* buffer, size_t size, u64 offset)
{
    iovec vector { buffer, size };
    ssize_t n = detail::retry_on_eintr([&] { return ::preadv2(fd, &vector, 1, static_cast<off_t>(offset), RWF_NOWAIT); });
    if (n < 0)
        return make_errno_error(errno, "preadv2 (RWF_NOWAIT)");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> pwrite(int fd, void const* buffer, size_t size, u64 offset, int rwf_flags)
{
    ssize_t n = detail::retry_on_eintr([&] {
        if (rwf_flags == 0)
            return ::pwrite(fd, buffer, size, static_cast<off_t>(offset));
        iovec vector { const_cast<void*>(buffer), size };
        return ::pwritev2(fd, &vector, 1, static_cast<off_t>(offset), rwf_flags);
    });
    if (n < 0)
        return make_errno_error(errno, rwf_flags == 0 ? "pwrite" : "pwritev2");
    return static_cast<size_t>(n);
}

ErrorOr<void> pread_exact(int fd, void* buffer, size_t size, u64 offset)
{
    auto* bytes = static_cast<u8*>(buffer);
    while (size > 0) {
        size_t n = TRY(pread(fd, bytes, size, offset));
        if (n == 0)
            return make_error(ErrorKind::Io, fmt::format("unexpected end of file at offset {} ({} more bytes expected)", offset, size));
        bytes += n;
        size -= n;
        offset += n;
    }
    return {};
}

ErrorOr<void> pwrite_exact(int fd, void const* buffer, size_t size, u64 offset, int rwf_flags)
{
    auto const* bytes = static_cast<u8 const*>(buffer);
    while (size > 0) {
        size_t n = TRY(pwrite(fd, bytes, size, offset, rwf_flags));
        if (n == 0)
            return make_errno_error(EIO, "pwrite");
        bytes += n;
        size -= n;
        offset += n;
    }
    return {};
}

ErrorOr<void> fstat(int fd, struct stat& out)
{
    if (::fstat(fd, &out) < 0)
        return make_errno_error(errno, "fstat");
    return {};
}

ErrorOr<u64> file_size(int fd)
{
    struct stat st { };
    TRY(fstat(fd, st));
    return static_cast<u64>(st.st_size);
}

ErrorOr<void> ftruncate(int fd, u64 size)
{
    if (detail::retry_on_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(size)); }) < 0)
        return make_errno_error(errno, "ftruncate");
    return {};
}

ErrorOr<void> fsync(int fd)
{
    if (detail::retry_on_eintr([&] { return ::fsync(fd); }) < 0)
        return make_errno_error(errno, "fsync");
    return {};
}

ErrorOr<void> fdatasync(int fd)
{
    if (detail::retry_on_eintr([&] { return ::fdatasync(fd); }) < 0)
        return make_errno_error(errno, "fdatasync");
    return {};
}

ErrorOr<void> pipe(int fds[2], int flags)
{
    if (::pipe2(fds, flags | O_CLOEXEC) < 0)
        return make_errno_error(errno, "pipe2");
    return {};
}

ErrorOr<std::string> read_file(std::string const& path)
{
    Fd fd = TRY(open(path, O_RDONLY));
    std::string contents;
    char buffer[4096];
    for (;;) {
        size_t n = TRY(read(fd.get(), buffer, sizeof(buffer)));
        if (n == 0)
            break;
        contents.append(buffer, n);
    }
    return contents;
}

ErrorOr<void> fallocate(int fd, int mode, u64 offset, u64 length)
{
    if (detail::retry_on_eintr([&] { return ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length)); }) < 0)
        return make_errno_error(errno, "fallocate");
    return {};
}

ErrorOr<u64> lseek(int fd, u64 offset, int whence)
{
    off_t result = ::lseek(fd, static_cast<off_t>(offset), whence);
    if (result < 0)
        return make_errno_error(errno, "lseek");
    return static_cast<u64>(result);
}

ErrorOr<void> flock(int fd, int operation)
{
    if (detail::retry_on_eintr([&] { return ::flock(fd, operation); }) < 0)
        return make_errno_error(errno, "flock");
    return {};
}

ErrorOr<void> ofd_lock(int fd, short type)
{
    struct flock lock { };
    lock.l_type = type;
    lock.l_whence = SEEK_SET; // l_start 0, l_len 0: the whole file, however it grows
    if (detail::retry_on_eintr([&] { return ::fcntl(fd, F_OFD_SETLK, &lock); }) < 0)
        return make_errno_error(errno, "fcntl F_OFD_SETLK");
    return {};
}

ErrorOr<size_t> readv(int fd, struct iovec const* vectors, size_t count)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::readv(fd, vectors, static_cast<int>(std::min<size_t>(count, IOV_MAX))); });
    if (n < 0)
        return make_errno_error(errno, "readv");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> writev(int fd, struct iovec const* vectors, size_t count)
{
    ssize_t n = detail::retry_on_eintr([&] { return ::writev(fd, vectors, static_cast<int>(std::min<size_t>(count, IOV_MAX))); });
    if (n < 0)
        return make_errno_error(errno, "writev");
    return static_cast<size_t>(n);
}

ErrorOr<void> set_nonblocking(int fd)
{
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return make_errno_error(errno, "fcntl O_NONBLOCK");
    return {};
}

} // namespace kasou::sys
