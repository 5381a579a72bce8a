#include "virtio_pci.h"

#include "apic.h"
#include "arch.h"

/* virtio_pci_cap.cfg_type (virtio 1.2, 4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* struct virtio_pci_cap field offsets. */
#define CAP_CFG_TYPE 3
#define CAP_BAR 4
#define CAP_OFFSET 8
#define CAP_LENGTH 12
#define CAP_NOTIFY_MULTIPLIER 16

/* struct virtio_pci_common_cfg (virtio 1.2, 4.1.4.3). */
#define COMMON_DEVICE_FEATURE_SELECT 0x00
#define COMMON_DEVICE_FEATURE 0x04
#define COMMON_DRIVER_FEATURE_SELECT 0x08
#define COMMON_DRIVER_FEATURE 0x0c
#define COMMON_MSIX_CONFIG 0x10
#define COMMON_NUM_QUEUES 0x12
#define COMMON_DEVICE_STATUS 0x14
#define COMMON_CONFIG_GENERATION 0x15
#define COMMON_QUEUE_SELECT 0x16
#define COMMON_QUEUE_SIZE 0x18
#define COMMON_QUEUE_MSIX_VECTOR 0x1a
#define COMMON_QUEUE_ENABLE 0x1c
#define COMMON_QUEUE_NOTIFY_OFF 0x1e
#define COMMON_QUEUE_DESC 0x20
#define COMMON_QUEUE_DRIVER 0x28
#define COMMON_QUEUE_DEVICE 0x30
#define COMMON_CFG_MIN_LENGTH 0x38

/* Device status bits (virtio 1.2, 2.1). */
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40
#define STATUS_FAILED 0x80

/* MSI-X capability and table (PCI Local Bus 3.0, 6.8.2). */
#define MSIX_CONTROL 2
#define MSIX_TABLE 4
#define MSIX_CONTROL_ENABLE (1u << 15)
#define MSIX_CONTROL_FUNCTION_MASK (1u << 14)
#define MSIX_CONTROL_TABLE_SIZE 0x7ffu
#define MSIX_ENTRY_WORDS 4
#define MSIX_ADDRESS_X2APIC 0xfee00000u

#define RESET_POLL_LIMIT 1000
#define CONFIG_READ_ATTEMPTS 16
#define MSIX_QUEUE_ENTRY 0 /* every queue of a device shares MSI-X table entry 0 */

static uint8_t common8(struct virtio_pci_device const *dev, uint32_t offset) { return dev->common[offset]; }
static uint16_t common16(struct virtio_pci_device const *dev, uint32_t offset)
{
    return *(volatile uint16_t const *)(dev->common + offset);
}
static uint32_t common32(struct virtio_pci_device const *dev, uint32_t offset)
{
    return *(volatile uint32_t const *)(dev->common + offset);
}
static void set_common8(struct virtio_pci_device *dev, uint32_t offset, uint8_t value) { dev->common[offset] = value; }
static void set_common16(struct virtio_pci_device *dev, uint32_t offset, uint16_t value)
{
    *(volatile uint16_t *)(dev->common + offset) = value;
}
static void set_common32(struct virtio_pci_device *dev, uint32_t offset, uint32_t value)
{
    *(volatile uint32_t *)(dev->common + offset) = value;
}
static void set_common64(struct virtio_pci_device *dev, uint32_t offset, uint64_t value)
{
    set_common32(dev, offset, (uint32_t)value);
    set_common32(dev, offset + 4, (uint32_t)(value >> 32));
}

uint16_t virtio_pci_type(struct pci_function const *f)
{
    if (f->vendor != VIRTIO_PCI_VENDOR || f->device_id <= VIRTIO_PCI_DEVICE_MODERN_BASE || f->device_id > 0x107f)
        return 0;
    return (uint16_t)(f->device_id - VIRTIO_PCI_DEVICE_MODERN_BASE);
}

char const *virtio_type_name(uint16_t type)
{
    switch (type) {
    case VIRTIO_ID_BLOCK:
        return "virtio-blk";
    case VIRTIO_ID_CONSOLE:
        return "virtio-console";
    case VIRTIO_ID_RNG:
        return "virtio-rng";
    case VIRTIO_ID_VSOCK:
        return "virtio-vsock";
    default:
        return "virtio (other)";
    }
}

/* The address of a capability's structure, if its BAR is an assigned memory BAR holding it. */
static volatile uint8_t *capability_pointer(struct pci_function const *f, uint8_t capability)
{
    uint8_t bar_index = pci_read8(f, (uint16_t)(capability + CAP_BAR));
    if (bar_index >= PCI_BAR_COUNT)
        return 0;
    struct pci_bar const *bar = &f->bars[bar_index];
    uint32_t offset = pci_read32(f, (uint16_t)(capability + CAP_OFFSET));
    uint32_t length = pci_read32(f, (uint16_t)(capability + CAP_LENGTH));
    if (bar->is_io || !bar->address || (uint64_t)offset + length > bar->size || bar->address + bar->size > 0x100000000ull)
        return 0;
    return (volatile uint8_t *)(uintptr_t)(bar->address + offset);
}

static char const *find_structures(struct virtio_pci_device *dev)
{
    struct pci_function const *f = dev->pci;
    for (uint8_t cap = pci_find_capability(f, PCI_CAP_ID_VENDOR, 0); cap; cap = pci_find_capability(f, PCI_CAP_ID_VENDOR, cap)) {
        uint8_t type = pci_read8(f, (uint16_t)(cap + CAP_CFG_TYPE));
        volatile uint8_t *pointer = capability_pointer(f, cap);
        /* The first capability of each type that the driver can use wins (virtio 1.2, 4.1.4.1). */
        if (type == VIRTIO_PCI_CAP_COMMON_CFG && !dev->common && pointer &&
            pci_read32(f, (uint16_t)(cap + CAP_LENGTH)) >= COMMON_CFG_MIN_LENGTH)
            dev->common = pointer;
        else if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && !dev->notify_base && pointer) {
            dev->notify_base = pointer;
            dev->notify_multiplier = pci_read32(f, (uint16_t)(cap + CAP_NOTIFY_MULTIPLIER));
        } else if (type == VIRTIO_PCI_CAP_ISR_CFG && !dev->isr && pointer)
            dev->isr = pointer;
        else if (type == VIRTIO_PCI_CAP_DEVICE_CFG && !dev->device_config && pointer)
            dev->device_config = pointer;
    }
    if (!dev->common)
        return "no usable common configuration capability";
    if (!dev->notify_base)
        return "no usable notification capability";
    if (!dev->isr)
        return "no usable ISR capability";

    dev->msix_capability = pci_find_capability(f, PCI_CAP_ID_MSIX, 0);
    if (dev->msix_capability) {
        uint32_t table = pci_read32(f, (uint16_t)(dev->msix_capability + MSIX_TABLE));
        struct pci_bar const *bar = &f->bars[table & 7];
        dev->msix_entries = (uint16_t)((pci_read16(f, (uint16_t)(dev->msix_capability + MSIX_CONTROL)) & MSIX_CONTROL_TABLE_SIZE) + 1);
        uint64_t offset = table & ~7u;
        if ((table & 7) < PCI_BAR_COUNT && bar->address && !bar->is_io &&
            offset + (uint64_t)dev->msix_entries * MSIX_ENTRY_WORDS * 4 <= bar->size)
            dev->msix_table = (volatile uint32_t *)(uintptr_t)(bar->address + offset);
    }
    return 0;
}

void virtio_pci_reset(struct virtio_pci_device *dev)
{
    set_common8(dev, COMMON_DEVICE_STATUS, 0);
    /* The reset is done when the status reads back 0 (virtio 1.2, 4.1.4.3.2). */
    for (unsigned i = 0; i < RESET_POLL_LIMIT && common8(dev, COMMON_DEVICE_STATUS) != 0; ++i)
        cpu_relax();
}

char const *virtio_pci_open(struct virtio_pci_device *dev, struct pci_function *f)
{
    *dev = (struct virtio_pci_device){ 0 };
    dev->pci = f;
    dev->type = virtio_pci_type(f);
    char const *error = find_structures(dev);
    if (error)
        return error;
    pci_enable(f);
    virtio_pci_reset(dev);
    if (common8(dev, COMMON_DEVICE_STATUS) != 0)
        return "device status does not read 0 after a reset";
    set_common8(dev, COMMON_DEVICE_STATUS, STATUS_ACKNOWLEDGE);
    set_common8(dev, COMMON_DEVICE_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    return 0;
}

char const *virtio_pci_negotiate(struct virtio_pci_device *dev, uint64_t wanted)
{
    uint64_t offered = 0;
    for (uint32_t half = 0; half < 2; ++half) {
        set_common32(dev, COMMON_DEVICE_FEATURE_SELECT, half);
        offered |= (uint64_t)common32(dev, COMMON_DEVICE_FEATURE) << (32 * half);
    }
    dev->offered = offered;
    if (!(offered & VIRTIO_F_VERSION_1))
        return "VIRTIO_F_VERSION_1 not offered";
    dev->negotiated = offered & (wanted | VIRTIO_F_VERSION_1);
    for (uint32_t half = 0; half < 2; ++half) {
        set_common32(dev, COMMON_DRIVER_FEATURE_SELECT, half);
        set_common32(dev, COMMON_DRIVER_FEATURE, (uint32_t)(dev->negotiated >> (32 * half)));
    }
    uint8_t status = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;
    set_common8(dev, COMMON_DEVICE_STATUS, status);
    if (!(common8(dev, COMMON_DEVICE_STATUS) & STATUS_FEATURES_OK)) {
        set_common8(dev, COMMON_DEVICE_STATUS, status | STATUS_FAILED);
        return "device refused the features (FEATURES_OK cleared)";
    }
    return 0;
}

/* Points MSI-X table entry at vector on this CPU and enables MSI-X on the function. */
static char const *route_msix(struct virtio_pci_device *dev, uint16_t entry, uint8_t vector)
{
    if (!dev->msix_table || entry >= dev->msix_entries)
        return "no usable MSI-X table";
    volatile uint32_t *e = dev->msix_table + entry * MSIX_ENTRY_WORDS;
    e[0] = MSIX_ADDRESS_X2APIC | (x2apic_id() << 12);
    e[1] = 0;
    e[2] = vector;
    e[3] = 0; /* unmasked */
    uint16_t control_offset = (uint16_t)(dev->msix_capability + MSIX_CONTROL);
    uint16_t control = pci_read16(dev->pci, control_offset);
    pci_write16(dev->pci, control_offset, (uint16_t)((control | MSIX_CONTROL_ENABLE) & ~MSIX_CONTROL_FUNCTION_MASK));
    return 0;
}

char const *virtio_pci_setup_queue(struct virtio_pci_device *dev, struct virtqueue *vq, uint16_t index, uint16_t max_size,
                                   uint8_t msix_vector)
{
    if (index >= common16(dev, COMMON_NUM_QUEUES))
        return "queue index beyond num_queues";
    set_common16(dev, COMMON_QUEUE_SELECT, index);
    uint16_t device_size = common16(dev, COMMON_QUEUE_SIZE);
    if (device_size == 0)
        return "queue not available (size 0)";
    uint16_t size = VIRTQ_MAX_SIZE < max_size ? VIRTQ_MAX_SIZE : max_size;
    while (size > device_size)
        size /= 2;
    virtqueue_init(vq, index, size, dev->negotiated & VIRTIO_F_EVENT_IDX, dev->negotiated & VIRTIO_F_INDIRECT_DESC, msix_vector != 0);
    vq->notify = (volatile uint16_t *)(dev->notify_base + (uint32_t)common16(dev, COMMON_QUEUE_NOTIFY_OFF) * dev->notify_multiplier);

    set_common16(dev, COMMON_QUEUE_SIZE, size);
    set_common64(dev, COMMON_QUEUE_DESC, (uint64_t)(uintptr_t)vq->desc);
    set_common64(dev, COMMON_QUEUE_DRIVER, (uint64_t)(uintptr_t)&vq->avail);
    set_common64(dev, COMMON_QUEUE_DEVICE, (uint64_t)(uintptr_t)&vq->used);
    if (msix_vector) {
        /* The configuration change interrupt stays off. */
        char const *error = route_msix(dev, MSIX_QUEUE_ENTRY, msix_vector);
        if (error)
            return error;
        set_common16(dev, COMMON_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
        set_common16(dev, COMMON_QUEUE_MSIX_VECTOR, MSIX_QUEUE_ENTRY);
        if (common16(dev, COMMON_QUEUE_MSIX_VECTOR) != MSIX_QUEUE_ENTRY)
            return "device refused the queue's MSI-X vector";
    } else {
        set_common16(dev, COMMON_QUEUE_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
    }
    set_common16(dev, COMMON_QUEUE_ENABLE, 1);
    return 0;
}

char const *virtio_pci_driver_ok(struct virtio_pci_device *dev)
{
    set_common8(dev, COMMON_DEVICE_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    if (common8(dev, COMMON_DEVICE_STATUS) & STATUS_NEEDS_RESET)
        return "device needs a reset (DEVICE_NEEDS_RESET set)";
    return 0;
}

uint32_t virtio_pci_config32(struct virtio_pci_device const *dev, uint32_t offset)
{
    return *(volatile uint32_t const *)(dev->device_config + offset);
}

uint64_t virtio_pci_config64(struct virtio_pci_device const *dev, uint32_t offset)
{
    uint64_t value = 0;
    for (unsigned attempt = 0; attempt < CONFIG_READ_ATTEMPTS; ++attempt) {
        uint8_t generation = common8(dev, COMMON_CONFIG_GENERATION);
        value = virtio_pci_config32(dev, offset) | (uint64_t)virtio_pci_config32(dev, offset + 4) << 32;
        if (generation == common8(dev, COMMON_CONFIG_GENERATION))
            break;
    }
    return value;
}

char const *virtio_pci_start(struct virtio_pci_device *dev, struct pci_function *f, uint64_t wanted, struct virtqueue *queues,
                             uint16_t queue_count, uint16_t max_size, uint8_t msix_vector)
{
    char const *error = virtio_pci_open(dev, f);
    if (!error)
        error = virtio_pci_negotiate(dev, wanted);
    for (uint16_t q = 0; !error && q < queue_count; ++q)
        error = virtio_pci_setup_queue(dev, &queues[q], q, max_size, msix_vector);
    if (!error)
        error = virtio_pci_driver_ok(dev);
    return error;
}
