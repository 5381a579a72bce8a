#include "memory_check.h"

#include "paging.h"

#define PATTERN 0xa5c3f00f5a3c0ff0ull
#define PAGE_SIZE 4096ull
#define WORD 8ull

extern char const __image_start[];
extern char const __image_end[];

static bool in_image(uint64_t address)
{
    return address + WORD > (uint64_t)(uintptr_t)__image_start && address < (uint64_t)(uintptr_t)__image_end;
}

static bool check_word(uint64_t address, struct memory_failure *failure)
{
    volatile uint64_t *word = physical_pointer(address);
    uint64_t const patterns[2] = {PATTERN ^ address, ~(PATTERN ^ address)};
    uint64_t saved = *word;
    for (unsigned i = 0; i < 2; ++i) {
        *word = patterns[i];
        uint64_t read = *word;
        if (read != patterns[i]) {
            *failure = (struct memory_failure){address, patterns[i], read};
            return false;
        }
    }
    *word = saved;
    return true;
}

static bool check_sample(uint64_t address, unsigned *checked, struct memory_failure *failure)
{
    if (in_image(address) || address + WORD > PAGING_LIMIT)
        return true;
    ++*checked;
    return check_word(address, failure);
}

bool memory_check_range(uint64_t base, uint64_t size, unsigned *checked, struct memory_failure *failure)
{
    uint64_t first = (base + WORD - 1) & ~(WORD - 1);
    uint64_t end = (base + size) & ~(WORD - 1);
    if (end <= first)
        return true;
    uint64_t span = end - first;
    for (unsigned i = 0; i < MEMORY_SAMPLES_PER_ENTRY; ++i) {
        uint64_t address = first + (span / MEMORY_SAMPLES_PER_ENTRY * i & ~(WORD - 1));
        if (!check_sample(address, checked, failure))
            return false;
    }
    uint64_t last_page = end > first + PAGE_SIZE ? end - PAGE_SIZE : first;
    return check_sample(last_page, checked, failure) && check_sample(end - WORD, checked, failure);
}
