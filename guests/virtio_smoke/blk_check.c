/* The virtio-blk checks: capacity, pattern write / flush / read-back over three blocks (the
 * first, one in the middle, the last), discard and write-zeroes when offered, GET_ID. The
 * pattern fill and compare run at CPL3, where PVM hosts run code natively. */
#include "blk.h"
#include "checks.h"
#include "console.h"
#include "start_info.h"
#include "string.h"
#include "usermode.h"

#define BLOCK_BYTES 4096
#define BLOCK_SECTORS (BLOCK_BYTES / VIRTIO_BLK_SECTOR_SIZE)
#define CHECK_BLOCKS 3
#define MIN_CAPACITY_SECTORS (4 * BLOCK_SECTORS)

static struct blk blk;
static uint8_t written[CHECK_BLOCKS][BLOCK_BYTES] __attribute__((aligned(4096)));
static uint8_t read_back[CHECK_BLOCKS][BLOCK_BYTES] __attribute__((aligned(4096)));
static char serial[VIRTIO_BLK_ID_BYTES + 1];

/* What the CPL3 helpers work on: a block and the sector and seed its pattern derives from. */
struct pattern_job {
    uint64_t *words;
    uint64_t sector;
    uint64_t seed;
};

static uint64_t pattern_word(struct pattern_job const *job, uint64_t i)
{
    return job->seed ^ ((job->sector + 1) * 0x9e3779b97f4a7c15ull) ^ ((i + 1) * 0xbf58476d1ce4e5b9ull);
}

static uint64_t fill_pattern(uint64_t argument)
{
    struct pattern_job const *job = (struct pattern_job const *)(uintptr_t)argument;
    for (uint64_t i = 0; i < BLOCK_BYTES / 8; ++i)
        job->words[i] = pattern_word(job, i);
    return 0;
}

/* Returns 0 when the block holds the pattern, else 1 + the index of the first wrong word. */
static uint64_t compare_pattern(uint64_t argument)
{
    struct pattern_job const *job = (struct pattern_job const *)(uintptr_t)argument;
    for (uint64_t i = 0; i < BLOCK_BYTES / 8; ++i) {
        if (job->words[i] != pattern_word(job, i))
            return i + 1;
    }
    return 0;
}

/* Returns 0 when the block is all zero, else 1 + the index of the first non-zero word. */
static uint64_t find_nonzero(uint64_t argument)
{
    uint64_t const *words = (uint64_t const *)(uintptr_t)argument;
    for (uint64_t i = 0; i < BLOCK_BYTES / 8; ++i) {
        if (words[i])
            return i + 1;
    }
    return 0;
}

/* The buffer is not cleared first (a CPL0 loop): what it holds from before can never pass the
 * check that follows, so a device that does not write it is still caught. */
static void read_block(uint64_t sector, void *buffer, char const *what, uint8_t failure)
{
    uint8_t status = blk_request(&blk, VIRTIO_BLK_T_IN, sector, buffer, BLOCK_BYTES, false);
    if (status != VIRTIO_BLK_S_OK)
        guest_fail(failure, "virtio-blk: reading sector %lu %s: status %u", sector, what, status);
}

/* Sends a one-range DISCARD or WRITE_ZEROES over the block at sector, reads it back and checks
 * it is all zero. */
static void zero_range_check(uint32_t type, char const *name, uint64_t sector, uint8_t *buffer, uint8_t failure)
{
    static struct virtio_blk_range range;
    range = (struct virtio_blk_range){ sector, BLOCK_SECTORS, 0 };
    uint8_t status = blk_request(&blk, type, 0, &range, sizeof range, false);
    if (status != VIRTIO_BLK_S_OK)
        guest_fail(failure, "virtio-blk: %s of sectors %lu-%lu: status %u", name, sector, sector + BLOCK_SECTORS - 1, status);
    read_block(sector, buffer, name, failure);
    uint64_t bad = run_at_cpl3(find_nonzero, (uint64_t)(uintptr_t)buffer);
    if (bad)
        guest_fail(failure, "virtio-blk: after %s, sector %lu word %lu reads 0x%lx, not 0", name, sector, bad - 1,
                   ((uint64_t *)buffer)[bad - 1]);
    console_printf("virtio-blk: %s of sectors %lu-%lu reads back as zeroes\n", name, sector, sector + BLOCK_SECTORS - 1);
}

void blk_check(struct pci_function *f, uint8_t vector, char const *cmdline)
{
    blk_open(&blk, f, vector);
    console_printf("virtio-blk: features 0x%lx offered, 0x%lx accepted, queue size %u\n", blk.dev.offered,
                   blk.dev.negotiated, blk.vq.size);
    if (blk.capacity < MIN_CAPACITY_SECTORS || blk.block_size < VIRTIO_BLK_SECTOR_SIZE || blk.block_size > BLOCK_BYTES)
        guest_fail(EXIT_BLK_CAPACITY, "virtio-blk: capacity %lu sectors, block size %u: need %u sectors of at most %u bytes",
                   blk.capacity, blk.block_size, MIN_CAPACITY_SECTORS, BLOCK_BYTES);
    console_printf("virtio-blk: capacity %lu sectors (%lu bytes), block size %u\n", blk.capacity,
                   blk.capacity * VIRTIO_BLK_SECTOR_SIZE, blk.block_size);

    /* Blocks aligned to 4 KiB, the last one as high as that allows. */
    uint64_t last = (blk.capacity - BLOCK_SECTORS) & ~(uint64_t)(BLOCK_SECTORS - 1);
    uint64_t sectors[CHECK_BLOCKS] = { 0, (blk.capacity / 2) & ~(uint64_t)(BLOCK_SECTORS - 1), last };
    /* blk_seed=N: a fixed pattern, left on the disk (no discard or write-zeroes) for a later run
     * with blk_verify=1, which only reads it back: data across VMs, front-ends and restarts. */
    uint64_t fixed_seed = cmdline_number(cmdline, "blk_seed", 0, 0, ~0ull, EXIT_BAD_OPTION);
    bool verify_only = cmdline_number(cmdline, "blk_verify", 0, 0, 1, EXIT_BAD_OPTION);
    if (verify_only && !fixed_seed)
        guest_fail(EXIT_BAD_OPTION, "blk_verify=1 needs the blk_seed= of the run that wrote the data");
    uint64_t seed = fixed_seed ? fixed_seed : rdtsc(); /* data left by an earlier run cannot pass for this one's */
    bool indirect = blk.dev.negotiated & VIRTIO_F_INDIRECT_DESC;
    for (unsigned b = 0; b < CHECK_BLOCKS && !verify_only; ++b) {
        struct pattern_job job = { (uint64_t *)written[b], sectors[b], seed };
        run_at_cpl3(fill_pattern, (uint64_t)(uintptr_t)&job);
        uint8_t status = blk_request(&blk, VIRTIO_BLK_T_OUT, sectors[b], written[b], BLOCK_BYTES, indirect);
        if (status != VIRTIO_BLK_S_OK)
            guest_fail(EXIT_BLK_IO_STATUS, "virtio-blk: writing sector %lu: status %u", sectors[b], status);
    }
    if (!verify_only)
        console_printf("virtio-blk: wrote %u blocks of %u bytes at sectors %lu, %lu, %lu (%s)\n", CHECK_BLOCKS, BLOCK_BYTES,
                       sectors[0], sectors[1], sectors[2], indirect ? "indirect descriptors" : "descriptor chains");

    if (verify_only) {
        console_printf("virtio-blk: verifying blocks written with seed %lu\n", seed);
    } else if (blk.dev.negotiated & VIRTIO_BLK_F_FLUSH) {
        uint8_t status = blk_request(&blk, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
        if (status != VIRTIO_BLK_S_OK)
            guest_fail(EXIT_BLK_FLUSH, "virtio-blk: flush: status %u", status);
        console_printf("virtio-blk: flush ok\n");
    } else {
        console_printf("virtio-blk: flush not offered, skipped\n");
    }

    for (unsigned b = 0; b < CHECK_BLOCKS; ++b) {
        read_block(sectors[b], read_back[b], "back", EXIT_BLK_IO_STATUS);
        struct pattern_job job = { (uint64_t *)read_back[b], sectors[b], seed };
        uint64_t bad = run_at_cpl3(compare_pattern, (uint64_t)(uintptr_t)&job);
        if (bad)
            guest_fail(EXIT_BLK_MISMATCH, "virtio-blk: sector %lu word %lu reads 0x%lx, wrote 0x%lx", sectors[b], bad - 1,
                       job.words[bad - 1], pattern_word(&job, bad - 1));
    }
    console_printf("virtio-blk: read back %u blocks, all match\n", CHECK_BLOCKS);

    if (fixed_seed) {
        console_printf("virtio-blk: blk_seed given, discard and write-zeroes skipped\n");
    } else {
        if (blk.dev.negotiated & VIRTIO_BLK_F_DISCARD)
            zero_range_check(VIRTIO_BLK_T_DISCARD, "discard", sectors[1], read_back[1], EXIT_BLK_DISCARD);
        else
            console_printf("virtio-blk: discard not offered, skipped\n");
        if (blk.dev.negotiated & VIRTIO_BLK_F_WRITE_ZEROES)
            zero_range_check(VIRTIO_BLK_T_WRITE_ZEROES, "write-zeroes", sectors[2], read_back[2], EXIT_BLK_WRITE_ZEROES);
        else
            console_printf("virtio-blk: write-zeroes not offered, skipped\n");
    }

    memset(serial, 0, sizeof serial);
    uint8_t status = blk_request(&blk, VIRTIO_BLK_T_GET_ID, 0, serial, VIRTIO_BLK_ID_BYTES, false);
    if (status != VIRTIO_BLK_S_OK)
        guest_fail(EXIT_BLK_GET_ID, "virtio-blk: get-id: status %u", status);
    for (unsigned i = 0; serial[i]; ++i) {
        if (serial[i] < 0x20 || serial[i] > 0x7e)
            serial[i] = '?';
    }
    console_printf("virtio-blk: serial \"%s\"\n", serial);
    virtio_pci_reset(&blk.dev);
}
