#pragma once

// Thin wrappers over the system calls kasou uses. Each returns ErrorOr and names the call in its
// error, so errno is read in exactly one place. EINTR is retried where the call is restartable.

#include <span>
#include <string>
#include <sys/types.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

struct stat;

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
ErrorOr<size_t> pwrite(int fd, void const* buffer, size_t size, u64 offset);
// Reads exactly size bytes at offset; a short file is an error naming what was expected.
ErrorOr<void> pread_exact(int fd, void* buffer, size_t size, u64 offset);
ErrorOr<void> pwrite_exact(int fd, void const* buffer, size_t size, u64 offset);
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

} // namespace kasou::sys
