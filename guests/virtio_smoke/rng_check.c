/* The virtio-rng check (virtio 1.2, 5.4): two reads of 64 bytes, neither all zero, not equal. */
#include "checks.h"
#include "console.h"
#include "string.h"

#define RNG_BYTES 64
#define RNG_MAX_REQUESTS 64 /* a device may return fewer bytes than asked for */

static struct virtio_pci_device rng;
static struct virtqueue rng_queue;
static uint8_t samples[2][RNG_BYTES];

static void fill(uint8_t *buffer)
{
    uint32_t filled = 0;
    for (unsigned i = 0; i < RNG_MAX_REQUESTS && filled < RNG_BYTES; ++i) {
        struct virtq_buffer b = { buffer + filled, RNG_BYTES - filled, true };
        virtqueue_add(&rng_queue, &b, 1, false, buffer);
        virtqueue_kick(&rng_queue);
        uint32_t written = wait_and_reap(&rng_queue, "virtio-rng request");
        filled += written < RNG_BYTES - filled ? written : RNG_BYTES - filled;
    }
    if (filled < RNG_BYTES)
        guest_fail(EXIT_RNG_ZERO, "virtio-rng: only %u of %u bytes after %u requests", filled, RNG_BYTES, RNG_MAX_REQUESTS);
}

static bool all_zero(uint8_t const *buffer)
{
    for (unsigned i = 0; i < RNG_BYTES; ++i) {
        if (buffer[i])
            return false;
    }
    return true;
}

void rng_check(struct pci_function *f, uint8_t vector)
{
    open_device(&rng, f, VIRTIO_F_EVENT_IDX, &rng_queue, 1, 8, vector);
    fill(samples[0]);
    fill(samples[1]);
    if (all_zero(samples[0]) || all_zero(samples[1]))
        guest_fail(EXIT_RNG_ZERO, "virtio-rng: a read of %u bytes is all zero", RNG_BYTES);
    if (memcmp(samples[0], samples[1], RNG_BYTES) == 0)
        guest_fail(EXIT_RNG_REPEAT, "virtio-rng: two reads of %u bytes are equal", RNG_BYTES);
    console_printf("virtio-rng: 2 reads of %u bytes, not zero, different (first bytes %02x%02x%02x%02x)\n", RNG_BYTES,
                   samples[0][0], samples[0][1], samples[0][2], samples[0][3]);
    virtio_pci_reset(&rng);
}
