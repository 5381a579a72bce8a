/* virtio_smoke: the exit values of its checks (guests/README.md lists them) and the pieces
 * main.c puts together. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "exit.h"
#include "pci.h"
#include "virtio_pci.h"

#define EXIT_BAD_START_INFO 1
#define EXIT_BAD_OPTION 2
#define EXIT_NO_X2APIC 3
#define EXIT_DEVICE_MISSING 4
#define EXIT_DEVICE_INIT 5
#define EXIT_TIMEOUT 6
#define EXIT_BLK_CAPACITY 7
#define EXIT_BLK_IO_STATUS 8
#define EXIT_BLK_MISMATCH 9
#define EXIT_BLK_FLUSH 10
#define EXIT_BLK_DISCARD 11
#define EXIT_BLK_WRITE_ZEROES 12
#define EXIT_BLK_GET_ID 13
#define EXIT_RNG_ZERO 14
#define EXIT_RNG_REPEAT 15
#define EXIT_BENCH 16
#define EXIT_PCI_BARS 17

/* ~2 s of TSC: the longest any single request may take. */
#define REQUEST_TIMEOUT_CYCLES (2 * TSC_CYCLES_ONE_SECOND)

/* Opens a virtio device, negotiates wanted features and sets up queues [0, queue_count) of up
 * to max_size entries, then DRIVER_OK; fails the guest with EXIT_DEVICE_INIT on any error. */
void open_device(struct virtio_pci_device *dev, struct pci_function *f, uint64_t wanted, struct virtqueue *queues,
                 uint16_t queue_count, uint16_t max_size, uint8_t vector);

/* Waits for a used element on vq and reaps it; fails the guest with EXIT_TIMEOUT after
 * REQUEST_TIMEOUT_CYCLES. Returns the bytes the device wrote. */
uint32_t wait_and_reap(struct virtqueue *vq, char const *what);

void blk_check(struct pci_function *f, uint8_t vector, char const *cmdline);
void rng_check(struct pci_function *f, uint8_t vector);
void console_check(struct pci_function *f, uint8_t vector);

/* The benchmark mode: 4 KiB requests at random 4 KiB-aligned offsets, queue_depth in flight,
 * for `requests` requests or, when that is 0, for `seconds` seconds of TSC (measured against
 * PIT channel 2), with the request loop at CPL3 when at_cpl3 (polling: hlt is privileged).
 * Prints the count and "iops: N". */
#define BENCH_MAX_QUEUE_DEPTH 16
struct bench_options {
    bool write;
    unsigned queue_depth;
    uint64_t seconds;
    uint64_t requests;
    bool at_cpl3;
};
void blk_bench(struct pci_function *f, uint8_t vector, struct bench_options const *options);

/* The soak mode (soak=1, soak.c): the other CPUs print ticks while CPU 0 writes and verifies a
 * few blocks round after round, until a byte arrives on COM1. */
void blk_soak(struct pci_function *f, uint8_t vector, unsigned other_cpus);
