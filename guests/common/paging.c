#include "paging.h"

#define IDENTITY_MAPPED_LIMIT (4ull << 30)
#define PTE_PRESENT_RW 0x3ull
#define PDE_LARGE_PAGE 0x83ull
#define LARGE_PAGE_SHIFT 21
#define GIB_SHIFT 30
#define ENTRIES 512

extern uint64_t pdpt[ENTRIES];

static uint64_t window_directory[ENTRIES] __attribute__((aligned(4096)));
static unsigned window_pdpt_slot;
static unsigned window_pd_slot;

static void flush_tlb(void)
{
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

void *physical_pointer(uint64_t address)
{
    if (address < IDENTITY_MAPPED_LIMIT)
        return (void *)(uintptr_t)address;
    unsigned pdpt_slot = (unsigned)(address >> GIB_SHIFT) % ENTRIES;
    unsigned pd_slot = (unsigned)(address >> LARGE_PAGE_SHIFT) % ENTRIES;
    if (window_pdpt_slot)
        pdpt[window_pdpt_slot] = 0;
    window_directory[window_pd_slot] = 0;
    window_directory[pd_slot] = ((address >> LARGE_PAGE_SHIFT) << LARGE_PAGE_SHIFT) | PDE_LARGE_PAGE;
    pdpt[pdpt_slot] = (uint64_t)(uintptr_t)window_directory | PTE_PRESENT_RW;
    window_pdpt_slot = pdpt_slot;
    window_pd_slot = pd_slot;
    flush_tlb();
    return (void *)(uintptr_t)address;
}
