/* A virtio-blk driver for the checks and the benchmark (virtio 1.2, 5.2): request layout,
 * configuration, and one synchronous request helper. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "virtio_pci.h"

/* Feature bits (virtio 1.2, 5.2.3). */
#define VIRTIO_BLK_F_BLK_SIZE (1ull << 6)
#define VIRTIO_BLK_F_FLUSH (1ull << 9)
#define VIRTIO_BLK_F_DISCARD (1ull << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ull << 14)

/* Request types (virtio 1.2, 5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR_SIZE 512

/* Configuration fields (virtio 1.2, 5.2.4). */
#define VIRTIO_BLK_CONFIG_CAPACITY 0x00
#define VIRTIO_BLK_CONFIG_BLK_SIZE 0x14

struct virtio_blk_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct virtio_blk_range {
    uint64_t sector;
    uint32_t sectors;
    uint32_t flags;
};

/* One request's driver-owned memory: header and status stay put while the request is in
 * flight. */
struct blk_slot {
    struct virtio_blk_header header;
    uint8_t status;
};

struct blk {
    struct virtio_pci_device dev;
    struct virtqueue vq;
    uint64_t capacity; /* in 512-byte sectors */
    uint32_t block_size;
};

/* Opens the device with the features the checks and the benchmark use. */
void blk_open(struct blk *blk, struct pci_function *f, uint8_t vector);

/* Queues a request on slot (header, optional data of length bytes, status); data is written by
 * the device for IN and GET_ID. Returns false when the queue is full. */
bool blk_queue(struct blk *blk, struct blk_slot *slot, uint32_t type, uint64_t sector, void *data, uint32_t length,
               bool indirect);

/* Runs one request to completion and returns its status byte (fails the guest on a timeout). */
uint8_t blk_request(struct blk *blk, uint32_t type, uint64_t sector, void *data, uint32_t length, bool indirect);
