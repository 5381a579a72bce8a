/* The benchmark mode of virtio_smoke: random 4 KiB reads or writes at a fixed queue depth. The
 * offsets come from a fixed-seed generator, so every VMM sees the same request stream. The request
 * loop runs at CPL0, or at CPL3 (cpl=3), where PVM hosts run guest code natively: there the
 * driver's own cost is as small as on VT-x, and what is measured is mostly the VMM's. */
#include "blk.h"
#include "checks.h"
#include "console.h"
#include "legacy_timer.h"
#include "usermode.h"
#include "virtio_wait.h"

#define BENCH_BLOCK_BYTES 4096
#define BENCH_BLOCK_SECTORS (BENCH_BLOCK_BYTES / VIRTIO_BLK_SECTOR_SIZE)
#define CALIBRATION_MS 50

static struct blk blk;
static struct blk_slot slots[BENCH_MAX_QUEUE_DEPTH];
static uint8_t buffers[BENCH_MAX_QUEUE_DEPTH][BENCH_BLOCK_BYTES] __attribute__((aligned(4096)));
static uint64_t random_state = 0x853c49e6748fea9bull;

static uint64_t next_random(void)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return random_state;
}

/* Where a run stopped early; the loop may run at CPL3, where it cannot print or exit itself. */
enum bench_failure { BENCH_DONE, BENCH_QUEUE_FULL, BENCH_TIMEOUT, BENCH_IO_STATUS };

struct bench_run {
    struct bench_options const *options;
    uint64_t blocks;
    uint64_t tsc_hz;
    uint64_t start;     /* tsc when the first request went out */
    uint64_t issued;
    uint64_t completed;
    enum bench_failure failure;
    uint64_t failed_sector; /* for BENCH_IO_STATUS */
    uint8_t failed_status;
};

static bool issue(struct bench_run *run, unsigned slot)
{
    uint64_t sector = next_random() % run->blocks * BENCH_BLOCK_SECTORS;
    uint32_t type = run->options->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    if (!blk_queue(&blk, &slots[slot], type, sector, buffers[slot], BENCH_BLOCK_BYTES, false)) {
        run->failure = BENCH_QUEUE_FULL;
        return false;
    }
    ++run->issued;
    return true;
}

/* The request loop: touches only memory (rings, buffers, the notification register), so it runs
 * at CPL0 or, through run_at_cpl3, at CPL3. */
static uint64_t bench_loop(uint64_t argument)
{
    struct bench_run *run = (struct bench_run *)(uintptr_t)argument;
    struct bench_options const *options = run->options;
    run->start = rdtsc();
    uint64_t end = options->requests ? UINT64_MAX : run->start + options->seconds * run->tsc_hz;
    for (unsigned slot = 0; slot < options->queue_depth && (!options->requests || run->issued < options->requests); ++slot) {
        if (!issue(run, slot))
            return 0;
    }
    virtqueue_kick(&blk.vq);
    while (run->completed < run->issued) {
        if (!virtio_wait_used(&blk.vq, rdtsc() + REQUEST_TIMEOUT_CYCLES)) {
            run->failure = BENCH_TIMEOUT;
            return 0;
        }
        void *token;
        uint32_t written;
        bool more = options->requests ? run->issued < options->requests : (int64_t)(rdtsc() - end) < 0;
        bool queued = false;
        while (virtqueue_get_used(&blk.vq, &token, &written)) {
            struct blk_slot *slot = token;
            ++run->completed;
            if (slot->status != VIRTIO_BLK_S_OK) {
                run->failure = BENCH_IO_STATUS;
                run->failed_sector = slot->header.sector;
                run->failed_status = slot->status;
                return 0;
            }
            if (more && (!options->requests || run->issued < options->requests)) {
                if (!issue(run, (unsigned)(slot - slots)))
                    return 0;
                queued = true;
            }
        }
        if (queued)
            virtqueue_kick(&blk.vq);
    }
    return 0;
}

void blk_bench(struct pci_function *f, uint8_t vector, struct bench_options const *options)
{
    uint64_t tsc_hz = pit_measure_tsc_hz(CALIBRATION_MS);
    if (!tsc_hz)
        guest_fail(EXIT_BENCH, "bench: pit channel 2 did not expire, cannot measure the tsc");
    blk_open(&blk, f, vector);
    uint64_t blocks = blk.capacity / BENCH_BLOCK_SECTORS;
    /* Chains of 3 descriptors: the queue must hold queue_depth of them. */
    if (!blocks || options->queue_depth * 3 > blk.vq.size)
        guest_fail(EXIT_BENCH, "bench: %lu blocks of 4 KiB, queue size %u: cannot run qd %u", blocks, blk.vq.size,
                   options->queue_depth);
    console_printf("bench: %s qd %u at cpl%u, 4096-byte requests over %lu blocks, tsc %lu Hz (measured against pit channel 2)\n",
                   options->write ? "randwrite" : "randread", options->queue_depth, options->at_cpl3 ? 3 : 0, blocks, tsc_hz);

    struct bench_run run = { .options = options, .blocks = blocks, .tsc_hz = tsc_hz };
    if (options->at_cpl3)
        run_at_cpl3(bench_loop, (uint64_t)(uintptr_t)&run);
    else
        bench_loop((uint64_t)(uintptr_t)&run);
    switch (run.failure) {
    case BENCH_DONE:
        break;
    case BENCH_QUEUE_FULL:
        guest_fail(EXIT_BENCH, "bench: no room in the queue for request %lu", run.issued);
    case BENCH_TIMEOUT:
        guest_fail(EXIT_TIMEOUT, "bench: no completion within ~2 s (%lu of %lu done)", run.completed, run.issued);
    case BENCH_IO_STATUS:
        guest_fail(EXIT_BLK_IO_STATUS, "bench: request at sector %lu: status %u", run.failed_sector, run.failed_status);
    }
    uint64_t microseconds = (rdtsc() - run.start) * 1000000 / tsc_hz;
    console_printf("bench: %lu requests in %lu us, %lu queue interrupts\n", run.completed, microseconds, virtio_wait_interrupts());
    console_printf("iops: %lu\n", microseconds ? run.completed * 1000000 / microseconds : 0);
    virtio_pci_reset(&blk.dev);
}
