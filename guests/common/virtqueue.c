#include "virtqueue.h"


static inline void store_release16(volatile uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint16_t load_acquire16(volatile uint16_t const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void full_barrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

void virtqueue_init(struct virtqueue *vq, uint16_t index, uint16_t size, bool event_idx, bool indirect, bool interrupts)
{
    vq->index = index;
    vq->size = size;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    vq->interrupts = interrupts;
    vq->notify = 0;
    for (uint16_t i = 0; i < size; ++i) {
        vq->desc[i] = (struct virtq_desc){ 0, 0, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1) };
        vq->tokens[i] = 0;
    }
    vq->avail.flags = interrupts ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT;
    vq->avail.idx = 0;
    vq->used.flags = 0;
    vq->used.idx = 0;
    *virtqueue_used_event(vq) = 0;
    *virtqueue_avail_event(vq) = 0;
    vq->free_head = 0;
    vq->free_count = size;
    vq->avail_shadow = 0;
    vq->kicked_avail = 0;
    vq->last_used = 0;
}

volatile uint16_t *virtqueue_used_event(struct virtqueue *vq) { return &vq->avail.ring[vq->size]; }

volatile uint16_t *virtqueue_avail_event(struct virtqueue *vq) { return (volatile uint16_t *)&vq->used.ring[vq->size]; }

static void fill(struct virtq_desc *d, struct virtq_buffer const *b, uint16_t next, bool last)
{
    d->addr = (uint64_t)(uintptr_t)b->address;
    d->len = b->length;
    d->flags = (uint16_t)((b->device_writes ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT));
    d->next = next;
}

bool virtqueue_add(struct virtqueue *vq, struct virtq_buffer const *buffers, unsigned count, bool use_indirect, void *token)
{
    bool indirect = use_indirect && vq->indirect && count > 1;
    unsigned needed = indirect ? 1 : count;
    if (count == 0 || count > VIRTQ_MAX_SEGMENTS || vq->free_count < needed)
        return false;

    uint16_t head = vq->free_head;
    if (indirect) {
        struct virtq_desc *table = vq->indirect_tables[head];
        for (unsigned i = 0; i < count; ++i)
            fill(&table[i], &buffers[i], (uint16_t)(i + 1), i + 1 == count);
        struct virtq_desc *d = &vq->desc[head];
        vq->free_head = d->next;
        d->addr = (uint64_t)(uintptr_t)table;
        d->len = (uint32_t)(count * sizeof(struct virtq_desc));
        d->flags = VIRTQ_DESC_F_INDIRECT;
    } else {
        uint16_t i = head;
        for (unsigned n = 0; n < count; ++n) {
            struct virtq_desc *d = &vq->desc[i];
            uint16_t next = d->next;
            fill(d, &buffers[n], next, n + 1 == count);
            if (n + 1 < count)
                i = next;
            else
                vq->free_head = next;
        }
    }
    vq->free_count = (uint16_t)(vq->free_count - needed);
    vq->tokens[head] = token;
    vq->avail.ring[vq->avail_shadow & (vq->size - 1)] = head;
    ++vq->avail_shadow;
    return true;
}

bool virtqueue_kick(struct virtqueue *vq)
{
    uint16_t old = vq->kicked_avail;
    uint16_t now = vq->avail_shadow;
    store_release16(&vq->avail.idx, now);
    vq->kicked_avail = now;
    full_barrier(); /* the device's avail_event / flags must be read after the index is visible */
    bool notify;
    if (vq->event_idx) {
        uint16_t event = load_acquire16(virtqueue_avail_event(vq));
        notify = (uint16_t)(now - event - 1) < (uint16_t)(now - old); /* virtio 1.2, 2.7.10 */
    } else {
        notify = !(load_acquire16(&vq->used.flags) & VIRTQ_USED_F_NO_NOTIFY);
    }
    if (notify)
        *vq->notify = vq->index;
    return notify;
}

bool virtqueue_has_used(struct virtqueue const *vq) { return load_acquire16(&vq->used.idx) != vq->last_used; }

bool virtqueue_get_used(struct virtqueue *vq, void **token, uint32_t *written)
{
    if (!virtqueue_has_used(vq))
        return false;
    struct virtq_used_elem elem = vq->used.ring[vq->last_used & (vq->size - 1)];
    ++vq->last_used;
    if (vq->event_idx && vq->interrupts)
        store_release16(virtqueue_used_event(vq), vq->last_used);

    uint16_t head = (uint16_t)(elem.id & (vq->size - 1));
    *token = vq->tokens[head];
    *written = elem.len;
    vq->tokens[head] = 0;
    /* Give the chain back: walk it to its end, then link it before the free list. */
    uint16_t last = head;
    uint16_t freed = 1;
    while ((vq->desc[last].flags & VIRTQ_DESC_F_NEXT) && freed < vq->size) {
        last = vq->desc[last].next;
        ++freed;
    }
    vq->desc[last].flags = VIRTQ_DESC_F_NEXT;
    vq->desc[last].next = vq->free_head;
    vq->free_head = head;
    vq->free_count = (uint16_t)(vq->free_count + freed);
    return true;
}
