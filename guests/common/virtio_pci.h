/* The driver side of the modern virtio-pci transport (virtio 1.2, 4.1.4): finds the vendor
 * capabilities, resets the device, negotiates features (never accepting one that was not
 * offered, and requiring VIRTIO_F_VERSION_1), sets up split virtqueues, and routes their
 * interrupts through MSI-X to this CPU's x2APIC, or leaves them off for polling.
 *
 * Functions that can fail return NULL on success or a static message naming what went wrong. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "virtqueue.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_MODERN_BASE 0x1040 /* + device type (virtio 1.2, 4.1.2.1) */

/* Device types (virtio 1.2, 5). */
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19

/* Reserved feature bits (virtio 1.2, 6). */
#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_EVENT_IDX (1ull << 29)
#define VIRTIO_F_VERSION_1 (1ull << 32)

#define VIRTIO_MSI_NO_VECTOR 0xffff

struct virtio_pci_device {
    struct pci_function *pci;
    uint16_t type;
    volatile uint8_t *common;
    volatile uint8_t *isr;
    volatile uint8_t *device_config;
    volatile uint8_t *notify_base;
    uint32_t notify_multiplier;
    uint8_t msix_capability;
    volatile uint32_t *msix_table;
    uint16_t msix_entries;
    uint64_t offered;    /* features the device offered */
    uint64_t negotiated; /* features both sides accepted */
};

/* The device type of a modern virtio function (vendor 0x1af4, device 0x1041..0x107f), else 0. */
uint16_t virtio_pci_type(struct pci_function const *f);
char const *virtio_type_name(uint16_t type);

/* Locates the common, notify, ISR and device configuration structures through the vendor
 * capabilities (BARs must be assigned), enables the function, resets the device and sets
 * ACKNOWLEDGE and DRIVER. */
char const *virtio_pci_open(struct virtio_pci_device *dev, struct pci_function *f);

/* Offers wanted & offered (VERSION_1 is always wanted and must be offered) and sets
 * FEATURES_OK; fails if the device does not keep it. */
char const *virtio_pci_negotiate(struct virtio_pci_device *dev, uint64_t wanted);

/* Sets up queue index with vq (up to VIRTQ_MAX_SIZE entries and at most the device's size,
 * and max_size if that is smaller; a power of two). msix_vector: the x2APIC vector to raise
 * when the device uses a buffer, or 0 for none (polling). */
char const *virtio_pci_setup_queue(struct virtio_pci_device *dev, struct virtqueue *vq, uint16_t index, uint16_t max_size,
                                   uint8_t msix_vector);

/* Sets DRIVER_OK; fails if the device has set DEVICE_NEEDS_RESET. */
char const *virtio_pci_driver_ok(struct virtio_pci_device *dev);

/* All of the above in turn: opens the function, negotiates wanted, sets up queues
 * [0, queue_count) of up to max_size entries with msix_vector, and sets DRIVER_OK. */
char const *virtio_pci_start(struct virtio_pci_device *dev, struct pci_function *f, uint64_t wanted, struct virtqueue *queues,
                             uint16_t queue_count, uint16_t max_size, uint8_t msix_vector);

/* Device configuration reads; 64-bit fields are read as two halves under the configuration
 * generation (virtio 1.2, 4.1.4.3.1). */
uint32_t virtio_pci_config32(struct virtio_pci_device const *dev, uint32_t offset);
uint64_t virtio_pci_config64(struct virtio_pci_device const *dev, uint32_t offset);

/* Resets the device, which stops it using its queues. */
void virtio_pci_reset(struct virtio_pci_device *dev);
