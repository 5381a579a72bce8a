/* The soak mode of virtio_smoke (soak=1): load for a VMM's pause and resume. Every other CPU
 * prints a tick line on COM1 every ~10 ms while CPU 0 writes a pattern (derived from the round
 * number) over SOAK_BLOCKS blocks of the first virtio-blk disk, reads them back and compares,
 * round after round, until a byte arrives on COM1's receiver. Then it prints how many rounds it
 * verified, so the host can check the disk holds the last round's pattern. */
#include "blk.h"
#include "checks.h"
#include "console.h"
#include "smp.h"
#include "string.h"

#define SOAK_BLOCKS 4
#define BLOCK_BYTES 4096
#define BLOCK_SECTORS (BLOCK_BYTES / VIRTIO_BLK_SECTOR_SIZE)
#define TICK_CYCLES (TSC_CYCLES_ONE_SECOND / 100)
#define AP_TIMEOUT_CYCLES (5 * TSC_CYCLES_ONE_SECOND)
#define COM1_LSR (COM1_PORT + 5)
#define LSR_DATA_READY 0x01

static struct blk blk;
static uint64_t block[BLOCK_BYTES / 8] __attribute__((aligned(4096)));
static bool finished;
static unsigned aps_finished;
static uint64_t ticks;

/* The word i of block b in round r; the host computes the same (tests/integration/vmm). */
static uint64_t soak_word(uint64_t round, uint64_t b, uint64_t i)
{
    return ((round + 1) * 0x9e3779b97f4a7c15ull) ^ ((b + 1) * 0xbf58476d1ce4e5b9ull) ^ ((i + 1) * 0x94d049bb133111ebull);
}

static void tick_until_finished(unsigned index)
{
    for (uint64_t tick = 0; !__atomic_load_n(&finished, __ATOMIC_ACQUIRE); ++tick) {
        console_printf("soak: cpu %u tick %lu\n", index + 1, tick);
        __atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
        uint64_t deadline = deadline_after(TICK_CYCLES);
        while (!deadline_passed(deadline) && !__atomic_load_n(&finished, __ATOMIC_ACQUIRE))
            cpu_relax();
    }
    __atomic_add_fetch(&aps_finished, 1, __ATOMIC_RELEASE);
}

static void soak_round(uint64_t round)
{
    for (uint64_t b = 0; b < SOAK_BLOCKS; ++b) {
        for (uint64_t i = 0; i < BLOCK_BYTES / 8; ++i)
            block[i] = soak_word(round, b, i);
        uint8_t status = blk_request(&blk, VIRTIO_BLK_T_OUT, b * BLOCK_SECTORS, block, BLOCK_BYTES, false);
        if (status != VIRTIO_BLK_S_OK)
            guest_fail(EXIT_BLK_IO_STATUS, "soak: writing sector %lu: status %u", b * BLOCK_SECTORS, status);
    }
    for (uint64_t b = 0; b < SOAK_BLOCKS; ++b) {
        memset(block, 0, sizeof block);
        uint8_t status = blk_request(&blk, VIRTIO_BLK_T_IN, b * BLOCK_SECTORS, block, BLOCK_BYTES, false);
        if (status != VIRTIO_BLK_S_OK)
            guest_fail(EXIT_BLK_IO_STATUS, "soak: reading sector %lu: status %u", b * BLOCK_SECTORS, status);
        for (uint64_t i = 0; i < BLOCK_BYTES / 8; ++i) {
            if (block[i] != soak_word(round, b, i))
                guest_fail(EXIT_BLK_MISMATCH, "soak: round %lu sector %lu word %lu reads 0x%lx, wrote 0x%lx", round,
                           b * BLOCK_SECTORS, i, block[i], soak_word(round, b, i));
        }
    }
}

void blk_soak(struct pci_function *f, uint8_t vector, unsigned other_cpus)
{
    blk_open(&blk, f, vector);
    if (blk.capacity < SOAK_BLOCKS * BLOCK_SECTORS)
        guest_fail(EXIT_BLK_CAPACITY, "soak: %lu sectors, %u needed", blk.capacity, SOAK_BLOCKS * BLOCK_SECTORS);
    unsigned up = 0;
    if (other_cpus) {
        smp_set_ap_work(tick_until_finished);
        up = smp_start_aps(other_cpus, AP_TIMEOUT_CYCLES);
    }
    console_printf("soak: %u other cpus ticking, %u blocks per round\n", up, SOAK_BLOCKS);
    uint64_t round = 0;
    while (!(inb(COM1_LSR) & LSR_DATA_READY))
        soak_round(round++);
    __atomic_store_n(&finished, true, __ATOMIC_RELEASE);
    uint64_t deadline = deadline_after(REQUEST_TIMEOUT_CYCLES);
    while (__atomic_load_n(&aps_finished, __ATOMIC_ACQUIRE) < up && !deadline_passed(deadline))
        cpu_relax();
    console_printf("soak: %lu rounds verified, %lu ticks from %u other cpus\n", round, __atomic_load_n(&ticks, __ATOMIC_RELAXED), up);
}
