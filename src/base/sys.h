#pragma once

// Thin wrappers over the system calls kasou uses. Each returns ErrorOr and names the call in its
// error, so errno is read in exactly one place. EINTR is retried where the call is restartable.

#include <span>
#include <string>
#include <vector>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

struct stat;
struct sockaddr;
struct iovec;
struct pollfd;

namespace kasou::sys {

ErrorOr<Fd> open(std::string const& path, int flags, mode_t mode = 0);
ErrorOr<int> ioctl(int fd, unsigned long request, char const* name);
ErrorOr<int> ioctl(int fd, unsigned long request, unsigned long argument, char const* name);
ErrorOr<int> ioctl(int fd, unsigned long request, void const* argument, char const* name);
ErrorOr<void*> mmap(void* address, u64 size, int prot, int flags, int fd, off_t offset);
ErrorOr<size_t> read(int fd, void* buffer, size_t size);
ErrorOr<size_t> write(int fd, void const* buffer, size_t size);
// Writes all of buffer, looping over short writes.
ErrorOr<void> write_exact(int fd, void const* buffer, size_t size);
ErrorOr<size_t> pread(int fd, void* buffer, size_t size, u64 offset);
// preadv2 with RWF_NOWAIT: reads what the page cache holds without waiting for the disk; EAGAIN
// when the first byte is not cached (a short count when later ones are not).
ErrorOr<size_t> pread_nowait(int fd, void* buffer, size_t size, u64 offset);
// rwf_flags other than 0 (RWF_DSYNC, say) make it a pwritev2 with those flags.
ErrorOr<size_t> pwrite(int fd, void const* buffer, size_t size, u64 offset, int rwf_flags = 0);
// Reads exactly size bytes at offset; a short file is an error naming what was expected.
ErrorOr<void> pread_exact(int fd, void* buffer, size_t size, u64 offset);
ErrorOr<void> pwrite_exact(int fd, void const* buffer, size_t size, u64 offset, int rwf_flags = 0);
ErrorOr<Fd> eventfd(unsigned initial, int flags);
ErrorOr<void> fstat(int fd, struct stat& out);
ErrorOr<u64> file_size(int fd);
ErrorOr<void> ftruncate(int fd, u64 size);
ErrorOr<void> fsync(int fd);
ErrorOr<void> fdatasync(int fd);
ErrorOr<Fd> epoll_create();
ErrorOr<void> epoll_ctl(int epoll_fd, int op, int fd, u32 events, u64 data);
ErrorOr<Fd> socket(int domain, int type, int protocol);
ErrorOr<void> pipe(int fds[2], int flags);
// Reads a whole (small) file into a string.
ErrorOr<std::string> read_file(std::string const& path);

// Sockets, descriptors and file-space calls used by the storage layer and its NBD server.
ErrorOr<void> fallocate(int fd, int mode, u64 offset, u64 length);
// lseek; ENXIO (no data / no hole past offset) is returned as an errno error like any other.
ErrorOr<u64> lseek(int fd, u64 offset, int whence);
ErrorOr<void> bind(int fd, struct sockaddr const* address, socklen_t length);
ErrorOr<void> listen(int fd, int backlog);
ErrorOr<void> connect(int fd, struct sockaddr const* address, socklen_t length);
// accept4 with SOCK_CLOEXEC.
ErrorOr<Fd> accept(int fd);
ErrorOr<void> setsockopt(int fd, int level, int name, int value);
// SO_SNDTIMEO / SO_RCVTIMEO (`name`) in milliseconds; 0 means no timeout.
ErrorOr<void> setsockopt_timeout(int fd, int name, u64 milliseconds);
// recv; 0 means the peer closed its side.
ErrorOr<size_t> recv(int fd, void* buffer, size_t size, int flags);
// Sends all of the vectors, looping over short sends; never raises SIGPIPE (MSG_NOSIGNAL).
ErrorOr<void> send_all(int fd, struct iovec const* vectors, size_t count);
ErrorOr<void> shutdown(int fd, int how);
// poll; returns the number of ready descriptors (0 on timeout).
ErrorOr<int> poll(struct pollfd* fds, size_t count, int timeout_ms);
// A signalfd for the signals in mask (which the caller has blocked).
ErrorOr<Fd> signalfd(sigset_t const& mask);
ErrorOr<void> unlink(std::string const& path);
ErrorOr<void> lstat(std::string const& path, struct stat& out);
// stat(2): follows symbolic links.
ErrorOr<void> stat(std::string const& path, struct stat& out);
ErrorOr<void> getsockname(int fd, struct sockaddr* address, socklen_t& length);

// Sets / reads the CPU affinity of thread `tid` (0: the caller); mask is a cpu_set_t-style bitmap
// of mask_bytes bytes, so machines beyond CPU_SETSIZE work.
ErrorOr<void> sched_setaffinity(pid_t tid, size_t mask_bytes, void const* mask);
ErrorOr<void> sched_getaffinity(pid_t tid, size_t mask_bytes, void* mask);
// Runs argv[0] (looked up in PATH) with argv and waits for it; returns its exit status (128 + signal
// number when it was killed).
ErrorOr<int> spawn_and_wait(std::vector<std::string> const& argv);
// Creates a fresh directory from a mkdtemp template ("/tmp/kasou-XXXXXX") and returns its path.
ErrorOr<std::string> make_temp_dir(std::string template_path);
// mbind(2): applies a NUMA memory policy (MPOL_*) to [address, address + length); nodemask has
// max_node bits.
ErrorOr<void> mbind(void* address, u64 length, int mode, unsigned long const* nodemask, unsigned long max_node, unsigned flags);

// flock(2); operation is LOCK_EX, LOCK_SH or LOCK_UN, optionally | LOCK_NB (EWOULDBLOCK when held).
ErrorOr<void> flock(int fd, int operation);
// fcntl(F_OFD_SETLK) over the whole file: type is F_RDLCK, F_WRLCK or F_UNLCK. The lock belongs to
// the open file description (it conflicts with other descriptions in this process too, and ends
// when the last descriptor of it closes); EAGAIN when a conflicting lock is held, never waits.
ErrorOr<void> ofd_lock(int fd, short type);
ErrorOr<void> rename(std::string const& from, std::string const& to);
// Creates the directory and its missing parents; an existing directory is fine.
ErrorOr<void> mkdir_all(std::string const& path, mode_t mode);

// Scatter / gather I/O on any descriptor (a tap, a socket); a short count is returned as is.
ErrorOr<size_t> readv(int fd, struct iovec const* vectors, size_t count);
ErrorOr<size_t> writev(int fd, struct iovec const* vectors, size_t count);
// One send(2) with MSG_NOSIGNAL added; returns how much the socket took (EAGAIN as an error).
ErrorOr<size_t> send(int fd, void const* buffer, size_t size, int flags);
// Sets O_NONBLOCK on fd (an accepted socket, say).
ErrorOr<void> set_nonblocking(int fd);

} // namespace kasou::sys
