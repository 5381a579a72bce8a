#pragma once

// System call wrappers: descriptors and the data behind them (open, read and write,
// exact and vectored, sync, space, locks, ioctl).
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <string>
#include <sys/types.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

struct stat;
struct iovec;

namespace kasou::sys {

ErrorOr<Fd> open(std::string const& path, int flags, mode_t mode = 0);
ErrorOr<int> ioctl(int fd, unsigned long request, char const* name);
ErrorOr<int> ioctl(int fd, unsigned long request, unsigned long argument, char const* name);
ErrorOr<int> ioctl(int fd, unsigned long request, void const* argument, char const* name);
// One ioctl without an argument that a signal may interrupt: EINTR comes back as an error instead
// of being retried (KVM_RUN, whose interruption is how a vCPU is stopped).
ErrorOr<int> ioctl_interruptible(int fd, unsigned long request, char const* name);
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
ErrorOr<void> fstat(int fd, struct stat& out);
ErrorOr<u64> file_size(int fd);
ErrorOr<void> ftruncate(int fd, u64 size);
ErrorOr<void> fsync(int fd);
ErrorOr<void> fdatasync(int fd);
ErrorOr<void> pipe(int fds[2], int flags);
// Reads a whole (small) file into a string.
ErrorOr<std::string> read_file(std::string const& path);
ErrorOr<void> fallocate(int fd, int mode, u64 offset, u64 length);
// lseek; ENXIO (no data / no hole past offset) is returned as an errno error like any other.
ErrorOr<u64> lseek(int fd, u64 offset, int whence);
// flock(2); operation is LOCK_EX, LOCK_SH or LOCK_UN, optionally | LOCK_NB (EWOULDBLOCK when held).
ErrorOr<void> flock(int fd, int operation);
// fcntl(F_OFD_SETLK) over the whole file: type is F_RDLCK, F_WRLCK or F_UNLCK. The lock belongs to
// the open file description (it conflicts with other descriptions in this process too, and ends
// when the last descriptor of it closes); EAGAIN when a conflicting lock is held, never waits.
ErrorOr<void> ofd_lock(int fd, short type);
// Scatter / gather I/O on any descriptor (a tap, a socket); a short count is returned as is.
ErrorOr<size_t> readv(int fd, struct iovec const* vectors, size_t count);
ErrorOr<size_t> writev(int fd, struct iovec const* vectors, size_t count);
// Sets O_NONBLOCK on fd (an accepted socket, say).
ErrorOr<void> set_nonblocking(int fd);

} // namespace kasou::sys
