#include "base/sys.h"

#include <cerrno>
#include <fcntl.h>
#include <algorithm>
#include <climits>
#include <poll.h>
#include <vector>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <cstdlib>

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

ErrorOr<size_t> pread_nowait(int fd, void* buffer, size_t size, u64 offset)
{
    iovec vector { buffer, size };
    ssize_t n = retry_on_eintr([&] { return ::preadv2(fd, &vector, 1, static_cast<off_t>(offset), RWF_NOWAIT); });
    if (n < 0)
        return make_errno_error(errno, "preadv2 (RWF_NOWAIT)");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> pwrite(int fd, void const* buffer, size_t size, u64 offset, int rwf_flags)
{
    ssize_t n = retry_on_eintr([&] {
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

ErrorOr<void> fallocate(int fd, int mode, u64 offset, u64 length)
{
    if (retry_on_eintr([&] { return ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length)); }) < 0)
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

ErrorOr<void> bind(int fd, struct sockaddr const* address, socklen_t length)
{
    if (::bind(fd, address, length) < 0)
        return make_errno_error(errno, "bind");
    return {};
}

ErrorOr<void> listen(int fd, int backlog)
{
    if (::listen(fd, backlog) < 0)
        return make_errno_error(errno, "listen");
    return {};
}

ErrorOr<void> connect(int fd, struct sockaddr const* address, socklen_t length)
{
    if (retry_on_eintr([&] { return ::connect(fd, address, length); }) < 0)
        return make_errno_error(errno, "connect");
    return {};
}

ErrorOr<Fd> accept(int fd)
{
    int client = retry_on_eintr([&] { return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); });
    if (client < 0)
        return make_errno_error(errno, "accept4");
    return Fd(client);
}

ErrorOr<void> setsockopt(int fd, int level, int name, int value)
{
    if (::setsockopt(fd, level, name, &value, sizeof(value)) < 0)
        return make_errno_error(errno, "setsockopt");
    return {};
}

ErrorOr<void> setsockopt_timeout(int fd, int name, u64 milliseconds)
{
    timeval value { .tv_sec = static_cast<time_t>(milliseconds / 1000), .tv_usec = static_cast<suseconds_t>(milliseconds % 1000 * 1000) };
    if (::setsockopt(fd, SOL_SOCKET, name, &value, sizeof(value)) < 0)
        return make_errno_error(errno, "setsockopt");
    return {};
}

ErrorOr<size_t> recv(int fd, void* buffer, size_t size, int flags)
{
    ssize_t n = retry_on_eintr([&] { return ::recv(fd, buffer, size, flags); });
    if (n < 0)
        return make_errno_error(errno, "recv");
    return static_cast<size_t>(n);
}

ErrorOr<void> send_all(int fd, struct iovec const* vectors, size_t count)
{
    auto send_some = [&](iovec const* first, size_t n) -> ErrorOr<size_t> {
        msghdr message {};
        message.msg_iov = const_cast<iovec*>(first); // sendmsg only reads the vectors
        message.msg_iovlen = std::min<size_t>(n, IOV_MAX);
        ssize_t sent = retry_on_eintr([&] { return ::sendmsg(fd, &message, MSG_NOSIGNAL); });
        if (sent < 0)
            return make_errno_error(errno, "sendmsg");
        return static_cast<size_t>(sent);
    };
    size_t total = 0;
    for (size_t i = 0; i < count; ++i)
        total += vectors[i].iov_len;
    size_t sent = TRY(send_some(vectors, count));
    if (sent == total)
        return {};
    // A short send: continue on a copy of the vectors, advanced past what went out.
    std::vector<iovec> pending(vectors, vectors + count);
    size_t first = 0;
    for (;;) {
        total -= sent;
        while (first < pending.size() && sent >= pending[first].iov_len) {
            sent -= pending[first].iov_len;
            ++first;
        }
        if (total == 0)
            return {};
        pending[first].iov_base = static_cast<u8*>(pending[first].iov_base) + sent;
        pending[first].iov_len -= sent;
        sent = TRY(send_some(pending.data() + first, pending.size() - first));
    }
}

ErrorOr<void> shutdown(int fd, int how)
{
    if (::shutdown(fd, how) < 0)
        return make_errno_error(errno, "shutdown");
    return {};
}

ErrorOr<int> poll(struct pollfd* fds, size_t count, int timeout_ms)
{
    int n = retry_on_eintr([&] { return ::poll(fds, count, timeout_ms); });
    if (n < 0)
        return make_errno_error(errno, "poll");
    return n;
}

ErrorOr<Fd> signalfd(sigset_t const& mask)
{
    int fd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0)
        return make_errno_error(errno, "signalfd");
    return Fd(fd);
}

ErrorOr<void> sched_setaffinity(pid_t tid, size_t mask_bytes, void const* mask)
{
    if (::sched_setaffinity(tid, mask_bytes, static_cast<cpu_set_t const*>(mask)) < 0)
        return make_errno_error(errno, "sched_setaffinity");
    return {};
}

ErrorOr<void> sched_getaffinity(pid_t tid, size_t mask_bytes, void* mask)
{
    if (::sched_getaffinity(tid, mask_bytes, static_cast<cpu_set_t*>(mask)) < 0)
        return make_errno_error(errno, "sched_getaffinity");
    return {};
}

ErrorOr<int> spawn_and_wait(std::vector<std::string> const& argv)
{
    std::vector<char*> args;
    for (auto const& arg : argv)
        args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
    if (rc != 0)
        return make_errno_error(rc, "posix_spawnp");
    int status = 0;
    if (retry_on_eintr([&] { return ::waitpid(pid, &status, 0); }) < 0)
        return make_errno_error(errno, "waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ErrorOr<void> mbind(void* address, u64 length, int mode, unsigned long const* nodemask, unsigned long max_node, unsigned flags)
{
    if (::syscall(SYS_mbind, address, length, mode, nodemask, max_node, flags) < 0)
        return make_errno_error(errno, "mbind");
    return {};
}

ErrorOr<std::string> make_temp_dir(std::string template_path)
{
    if (::mkdtemp(template_path.data()) == nullptr)
        return make_errno_error(errno, "mkdtemp");
    return template_path;
}

ErrorOr<void> flock(int fd, int operation)
{
    if (retry_on_eintr([&] { return ::flock(fd, operation); }) < 0)
        return make_errno_error(errno, "flock");
    return {};
}

ErrorOr<void> ofd_lock(int fd, short type)
{
    struct flock lock { };
    lock.l_type = type;
    lock.l_whence = SEEK_SET; // l_start 0, l_len 0: the whole file, however it grows
    if (retry_on_eintr([&] { return ::fcntl(fd, F_OFD_SETLK, &lock); }) < 0)
        return make_errno_error(errno, "fcntl F_OFD_SETLK");
    return {};
}

ErrorOr<void> rename(std::string const& from, std::string const& to)
{
    if (::rename(from.c_str(), to.c_str()) < 0)
        return make_errno_error(errno, fmt::format("rename {} to {}", from, to));
    return {};
}

ErrorOr<void> mkdir_all(std::string const& path, mode_t mode)
{
    for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
        std::string prefix = path.substr(0, slash);
        if (!prefix.empty() && ::mkdir(prefix.c_str(), mode) < 0 && errno != EEXIST)
            return make_errno_error(errno, fmt::format("mkdir {}", prefix));
        if (slash == std::string::npos)
            return {};
    }
}


ErrorOr<void> unlink(std::string const& path)
{
    if (::unlink(path.c_str()) < 0)
        return make_errno_error(errno, fmt::format("unlink {}", path));
    return {};
}

ErrorOr<void> lstat(std::string const& path, struct stat& out)
{
    if (::lstat(path.c_str(), &out) < 0)
        return make_errno_error(errno, fmt::format("lstat {}", path));
    return {};
}

ErrorOr<void> stat(std::string const& path, struct stat& out)
{
    if (::stat(path.c_str(), &out) < 0)
        return make_errno_error(errno, fmt::format("stat {}", path));
    return {};
}

ErrorOr<void> getsockname(int fd, struct sockaddr* address, socklen_t& length)
{
    if (::getsockname(fd, address, &length) < 0)
        return make_errno_error(errno, "getsockname");
    return {};
}

ErrorOr<size_t> readv(int fd, struct iovec const* vectors, size_t count)
{
    ssize_t n = retry_on_eintr([&] { return ::readv(fd, vectors, static_cast<int>(std::min<size_t>(count, IOV_MAX))); });
    if (n < 0)
        return make_errno_error(errno, "readv");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> writev(int fd, struct iovec const* vectors, size_t count)
{
    ssize_t n = retry_on_eintr([&] { return ::writev(fd, vectors, static_cast<int>(std::min<size_t>(count, IOV_MAX))); });
    if (n < 0)
        return make_errno_error(errno, "writev");
    return static_cast<size_t>(n);
}

ErrorOr<size_t> send(int fd, void const* buffer, size_t size, int flags)
{
    ssize_t n = retry_on_eintr([&] { return ::send(fd, buffer, size, flags | MSG_NOSIGNAL); });
    if (n < 0)
        return make_errno_error(errno, "send");
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
