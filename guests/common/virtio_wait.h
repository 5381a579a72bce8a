/* Waiting for a virtqueue: either by polling its used ring, or by halting until the queue's
 * MSI-X interrupt (or a watchdog tick of the x2APIC timer, so a lost interrupt costs at most a
 * tick, and a deadline is always noticed). Interrupts are enabled only inside the halt. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "virtqueue.h"

#define VIRTIO_WAIT_VECTOR 0x50   /* what the guests program into MSI-X table entries */
#define VIRTIO_WATCHDOG_VECTOR 0x41

/* Sets the mode. With interrupts: enables the x2APIC, installs the handlers and starts the
 * watchdog tick (every ~10 ms); needs idt_init() first. Returns the vector to give
 * virtio_pci_setup_queue (0 when polling). */
uint8_t virtio_wait_init(bool use_interrupts);

/* Waits until vq has a used element or the TSC passes deadline. Returns whether one came. */
bool virtio_wait_used(struct virtqueue const *vq, uint64_t deadline);

/* Interrupts taken on VIRTIO_WAIT_VECTOR so far. */
uint64_t virtio_wait_interrupts(void);
