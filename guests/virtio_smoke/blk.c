#include "blk.h"

#include "checks.h"

#define BLK_QUEUE_SIZE 64
#define BLK_WANTED_FEATURES                                                                                            \
    (VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_DISCARD | \
     VIRTIO_BLK_F_WRITE_ZEROES)

void blk_open(struct blk *blk, struct pci_function *f, uint8_t vector)
{
    open_device(&blk->dev, f, BLK_WANTED_FEATURES, &blk->vq, 1, BLK_QUEUE_SIZE, vector);
    if (!blk->dev.device_config)
        guest_fail(EXIT_DEVICE_INIT, "virtio-blk at 00:%02x.%u: no device configuration capability", f->device, f->function);
    blk->capacity = virtio_pci_config64(&blk->dev, VIRTIO_BLK_CONFIG_CAPACITY);
    blk->block_size = VIRTIO_BLK_SECTOR_SIZE;
    if (blk->dev.negotiated & VIRTIO_BLK_F_BLK_SIZE)
        blk->block_size = virtio_pci_config32(&blk->dev, VIRTIO_BLK_CONFIG_BLK_SIZE);
}

bool blk_queue(struct blk *blk, struct blk_slot *slot, uint32_t type, uint64_t sector, void *data, uint32_t length,
               bool indirect)
{
    slot->header = (struct virtio_blk_header){ type, 0, sector };
    slot->status = 0xff;
    bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    struct virtq_buffer buffers[3];
    unsigned count = 0;
    buffers[count++] = (struct virtq_buffer){ &slot->header, sizeof slot->header, false };
    if (length)
        buffers[count++] = (struct virtq_buffer){ data, length, device_writes };
    buffers[count++] = (struct virtq_buffer){ &slot->status, 1, true };
    return virtqueue_add(&blk->vq, buffers, count, indirect, slot);
}

uint8_t blk_request(struct blk *blk, uint32_t type, uint64_t sector, void *data, uint32_t length, bool indirect)
{
    static struct blk_slot slot;
    if (!blk_queue(blk, &slot, type, sector, data, length, indirect))
        guest_fail(EXIT_DEVICE_INIT, "virtio-blk: no room in an idle queue");
    virtqueue_kick(&blk->vq);
    wait_and_reap(&blk->vq, "virtio-blk request");
    return __atomic_load_n(&slot.status, __ATOMIC_ACQUIRE);
}
