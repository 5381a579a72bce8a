#pragma once

// System call wrappers: memory mappings and NUMA memory policy.
// Each returns ErrorOr and names the call in its error, so errno is read only in the sys_* files
// of src/base; EINTR is retried where the call is restartable.

#include <sys/types.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

namespace kasou::sys {

// memfd_create(2) with MFD_CLOEXEC added: anonymous memory with a descriptor, to share with another process.
ErrorOr<Fd> memfd_create(char const* name, unsigned flags);
ErrorOr<void*> mmap(void* address, u64 size, int prot, int flags, int fd, off_t offset);
// mbind(2): applies a NUMA memory policy (MPOL_*) to [address, address + length); nodemask has
// max_node bits.
ErrorOr<void> mbind(void* address, u64 length, int mode, unsigned long const* nodemask, unsigned long max_node, unsigned flags);

} // namespace kasou::sys
