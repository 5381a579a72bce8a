/* A split virtqueue, driver side (virtio 1.2, 2.7): descriptor table, available and used rings,
 * optional indirect descriptor tables (VIRTIO_F_INDIRECT_DESC) and event-index suppression
 * (VIRTIO_F_EVENT_IDX). Single-threaded: one CPU adds, kicks and reaps.
 *
 * Invariant: free_count descriptors are chained from free_head; every chain in flight is
 * recorded in tokens[] under its head index until the device returns it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define VIRTQ_MAX_SIZE 64
#define VIRTQ_MAX_SEGMENTS 4 /* buffers of one request: enough for every request the guests make */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[VIRTQ_MAX_SIZE];
    uint16_t used_event; /* at ring[size]: placed by virtqueue_init for the negotiated size */
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[VIRTQ_MAX_SIZE];
    uint16_t avail_event; /* at ring[size], as above */
};

/* One buffer of a request as the driver hands it over. */
struct virtq_buffer {
    void const *address;
    uint32_t length;
    bool device_writes;
};

struct virtqueue {
    uint16_t index;
    uint16_t size;
    bool event_idx;
    bool indirect;
    bool interrupts; /* false: the driver polls, and asks the device for no interrupts */
    volatile uint16_t *notify;
    struct virtq_desc desc[VIRTQ_MAX_SIZE] __attribute__((aligned(16)));
    struct virtq_avail avail __attribute__((aligned(2)));
    struct virtq_used used __attribute__((aligned(4)));
    struct virtq_desc indirect_tables[VIRTQ_MAX_SIZE][VIRTQ_MAX_SEGMENTS] __attribute__((aligned(16)));
    void *tokens[VIRTQ_MAX_SIZE];
    uint16_t free_head;
    uint16_t free_count;
    uint16_t avail_shadow;   /* the avail index the next add publishes */
    uint16_t kicked_avail;   /* avail->idx at the last kick */
    uint16_t last_used;      /* the next used element to reap */
};

/* Prepares an empty queue of size entries (a power of two, at most VIRTQ_MAX_SIZE).
 * event_idx / indirect say what was negotiated; without interrupts the driver polls, and tells the
 * device so (VIRTQ_AVAIL_F_NO_INTERRUPT, and with EVENT_IDX a used_event left behind). The
 * notify address is set by the transport. */
void virtqueue_init(struct virtqueue *vq, uint16_t index, uint16_t size, bool event_idx, bool indirect, bool interrupts);

/* The used_event / avail_event fields, which sit right after the rings of the actual size. */
volatile uint16_t *virtqueue_used_event(struct virtqueue *vq);
volatile uint16_t *virtqueue_avail_event(struct virtqueue *vq);

/* Queues a request of count buffers (driver-readable ones first), as one indirect descriptor
 * when use_indirect and the feature was negotiated, else as a chain. Returns false when the
 * queue has no room; nothing is published until virtqueue_kick. */
bool virtqueue_add(struct virtqueue *vq, struct virtq_buffer const *buffers, unsigned count, bool use_indirect, void *token);

/* Publishes what was added and notifies the device unless it asked not to be. Returns whether
 * it notified. */
bool virtqueue_kick(struct virtqueue *vq);

/* Whether the device has returned a request not reaped yet. */
bool virtqueue_has_used(struct virtqueue const *vq);

/* Reaps one returned request: its token and the bytes the device wrote. False when none. With
 * EVENT_IDX and interrupts, asks for an interrupt at the next completion. */
bool virtqueue_get_used(struct virtqueue *vq, void **token, uint32_t *written);
