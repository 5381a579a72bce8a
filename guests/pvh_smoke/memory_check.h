/* Checks RAM against the memory map by sampling: in each RAM entry a fixed number of evenly
 * spaced addresses plus the first and last 8 bytes of its last 4 KiB get a pattern written and
 * read back (then the old contents restored). The guest's own image is skipped. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MEMORY_SAMPLES_PER_ENTRY 16

struct memory_failure {
    uint64_t address;
    uint64_t wrote;
    uint64_t read;
};

/* Checks [base, base + size); adds the number of addresses checked to *checked. Returns false
 * and fills *failure at the first address that did not hold the pattern. */
bool memory_check_range(uint64_t base, uint64_t size, unsigned *checked, struct memory_failure *failure);
