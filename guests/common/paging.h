/* Reaching guest-physical memory from long mode. entry.S identity-maps the first 4 GiB; memory
 * above that is reached through one 2 MiB window that moves on demand. */
#pragma once

#include <stdint.h>

/* Returns a pointer through which the guest-physical address can be read and written: the
 * identity address below 4 GiB; above it, the identity address after mapping the 2 MiB page
 * that holds it (replacing the page mapped by the previous call above 4 GiB, so at most one
 * such pointer is valid at a time). Addresses up to 512 GiB; BSP only. */
void *physical_pointer(uint64_t address);

#define PAGING_LIMIT (512ull << 30)
