#include "base/sys.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::sys {

namespace {

template<class Call>
auto retry_on_eintr(Call call)
{
    for (;;) {
        auto result = call();
        if (result >= 0 || errno != EINTR)
            return result;
    }
}

} // namespace

ErrorOr<Fd> open(std::string const& path, int flags, mode_t mode)
{
    int fd = retry_on_eintr([&] { return ::open(path.c_str(), flags | O_CLOEXEC, mode); });
    if (fd < 0)
        return make_errno_error(errno, fmt::format("open {}", path));
    return Fd(fd);
}

ErrorOr<int> ioctl(int fd, unsigned long request, char const* name)
{
    int rc = retry_on_eintr([&] { return ::ioctl(fd, request, 0); });
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<int> ioctl(int fd, unsigned long request, unsigned long argument, char const* name)
{
    int rc = retry_on_eintr([&] { return ::ioctl(fd, request, argument); });
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<int> ioctl(int fd, unsigned long request, void const* argument, char const* name)
{
    int rc = retry_on_eintr([&] { return ::ioctl(fd, request, argument); });
    if (rc < 0)
        return make_errno_error(errno, name);
    return rc;
}

ErrorOr<void*> mmap(void* address, u64 size, int prot, int flags, int fd, off_t offset)
{
    void* result = ::mmap(address, size, prot, flags, fd, offset);
    if (result == MAP_FAILED)
        return make_errno_error(errno, "mmap");
    return result;
}

ErrorOr<size_t> read(int fd, void* buffer, size_t size)
{
    ssize_t n = retry_on_eintr([&] { return ::read(fd, buffer, size); });
    if (n < 0)
        return make_errno_error(errno, "read");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> write(int fd, void const* buffer, size_t size)
{
    ssize_t n = retry_on_eintr([&] { return ::write(fd, buffer, size); });
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
    ssize_t n = retry_on_eintr([&] { return ::pread(fd, buffer, size, static_cast<off_t>(offset)); });
    if (n < 0)
        return make_errno_error(errno, "pread");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> pwrite(int fd, void const* buffer, size_t size, u64 offset)
{
    ssize_t n = retry_on_eintr([&] { return ::pwrite(fd, buffer, size, static_cast<off_t>(offset)); });
    if (n < 0)
        return make_errno_error(errno, "pwrite");
    return static_cast<size_t>(n);
}

ErrorOr<void> pread_exact(int fd, void* buffer, size_t size, u64 offset)
{
    auto* bytes = static_cast<u8*>(buffer);
    while (size > 0) {
        size_t n = TRY(pread(fd, bytes, size, offset));
        if (n == 0)
            return make_error(fmt::format("unexpected end of file at offset {} ({} more bytes expected)", offset, size));
        bytes += n;
        size -= n;
        offset += n;
    }
    return {};
}

ErrorOr<void> pwrite_exact(int fd, void const* buffer, size_t size, u64 offset)
{
    auto const* bytes = static_cast<u8 const*>(buffer);
    while (size > 0) {
        size_t n = TRY(pwrite(fd, bytes, size, offset));
        if (n == 0)
            return make_errno_error(EIO, "pwrite");
        bytes += n;
        size -= n;
        offset += n;
    }
    return {};
}

ErrorOr<Fd> eventfd(unsigned initial, int flags)
{
    int fd = ::eventfd(initial, flags);
    if (fd < 0)
        return make_errno_error(errno, "eventfd");
    return Fd(fd);
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
    if (retry_on_eintr([&] { return ::ftruncate(fd, static_cast<off_t>(size)); }) < 0)
        return make_errno_error(errno, "ftruncate");
    return {};
}

ErrorOr<void> fsync(int fd)
{
    if (retry_on_eintr([&] { return ::fsync(fd); }) < 0)
        return make_errno_error(errno, "fsync");
    return {};
}

ErrorOr<void> fdatasync(int fd)
{
    if (retry_on_eintr([&] { return ::fdatasync(fd); }) < 0)
        return make_errno_error(errno, "fdatasync");
    return {};
}

ErrorOr<Fd> epoll_create()
{
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0)
        return make_errno_error(errno, "epoll_create1");
    return Fd(fd);
}

ErrorOr<void> epoll_ctl(int epoll_fd, int op, int fd, u32 events, u64 data)
{
    epoll_event event {};
    event.events = events;
    event.data.u64 = data;
    if (::epoll_ctl(epoll_fd, op, fd, &event) < 0)
        return make_errno_error(errno, "epoll_ctl");
    return {};
}

ErrorOr<Fd> socket(int domain, int type, int protocol)
{
    int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return make_errno_error(errno, "socket");
    return Fd(fd);
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

} // namespace kasou::sys
