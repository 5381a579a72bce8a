/* The benchmark mode of virtio_smoke: random 4 KiB reads or writes at a fixed queue depth. The
 * offsets come from a fixed-seed generator, so every VMM sees the same request stream. */
#include "blk.h"
#include "checks.h"
#include "console.h"
#include "legacy_timer.h"
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

static void issue(struct bench_options const *options, uint64_t blocks, unsigned slot)
{
    uint64_t sector = next_random() % blocks * BENCH_BLOCK_SECTORS;
    uint32_t type = options->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    if (!blk_queue(&blk, &slots[slot], type, sector, buffers[slot], BENCH_BLOCK_BYTES, false))
        guest_fail(EXIT_BENCH, "bench: no room for request %u in the queue", slot);
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
    console_printf("bench: %s qd %u, 4096-byte requests over %lu blocks, tsc %lu Hz (measured against pit channel 2)\n",
                   options->write ? "randwrite" : "randread", options->queue_depth, blocks, tsc_hz);

    uint64_t start = rdtsc();
    uint64_t end = options->requests ? UINT64_MAX : start + options->seconds * tsc_hz;
    uint64_t issued = 0, completed = 0;
    for (unsigned slot = 0; slot < options->queue_depth && (!options->requests || issued < options->requests); ++slot, ++issued)
        issue(options, blocks, slot);
    virtqueue_kick(&blk.vq);
    while (completed < issued) {
        if (!virtio_wait_used(&blk.vq, rdtsc() + REQUEST_TIMEOUT_CYCLES))
            guest_fail(EXIT_TIMEOUT, "bench: no completion within ~2 s (%lu of %lu done)", completed, issued);
        void *token;
        uint32_t written;
        bool more = options->requests ? issued < options->requests : (int64_t)(rdtsc() - end) < 0;
        bool queued = false;
        while (virtqueue_get_used(&blk.vq, &token, &written)) {
            struct blk_slot *slot = token;
            ++completed;
            if (slot->status != VIRTIO_BLK_S_OK)
                guest_fail(EXIT_BLK_IO_STATUS, "bench: request at sector %lu: status %u", slot->header.sector, slot->status);
            if (more && (!options->requests || issued < options->requests)) {
                issue(options, blocks, (unsigned)(slot - slots));
                ++issued;
                queued = true;
            }
        }
        if (queued)
            virtqueue_kick(&blk.vq);
    }
    uint64_t cycles = rdtsc() - start;
    uint64_t microseconds = cycles * 1000000 / tsc_hz;
    console_printf("bench: %lu requests in %lu us, %lu queue interrupts\n", completed, microseconds, virtio_wait_interrupts());
    console_printf("iops: %lu\n", microseconds ? completed * 1000000 / microseconds : 0);
    virtio_pci_reset(&blk.dev);
}
