/* PCI bus 0 through configuration mechanism #1 (ports 0xCF8 / 0xCFC): enumeration, capability
 * lists, BAR sizing, and assignment of memory BARs the firmware left unassigned (as under a PVH
 * boot without firmware), so a driver works whether or not a VMM or BIOS placed the BARs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define PCI_MAX_FUNCTIONS 32
#define PCI_BAR_COUNT 6

/* Configuration space registers (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAPABILITY_LIST 0x34

#define PCI_COMMAND_MEMORY (1u << 1)
#define PCI_COMMAND_BUS_MASTER (1u << 2)
#define PCI_STATUS_CAPABILITIES (1u << 4)
#define PCI_HEADER_MULTIFUNCTION 0x80

#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VENDOR 0x09

/* One memory BAR as found: its address (0 when unassigned) and size; a 64-bit BAR uses the
 * next slot too, which is then left empty. I/O BARs are recorded with is_io and never assigned. */
struct pci_bar {
    uint64_t address;
    uint64_t size;
    bool is_io;
    bool is_64bit;
};

/* A function on bus 0. Invariant: vendor != 0xffff; bars[] describe the BARs as last read. */
struct pci_function {
    uint8_t device;
    uint8_t function;
    uint16_t vendor;
    uint16_t device_id;
    uint32_t class_revision;
    struct pci_bar bars[PCI_BAR_COUNT];
};

uint32_t pci_read32(struct pci_function const *f, uint16_t offset);
uint16_t pci_read16(struct pci_function const *f, uint16_t offset);
uint8_t pci_read8(struct pci_function const *f, uint16_t offset);
void pci_write32(struct pci_function const *f, uint16_t offset, uint32_t value);
void pci_write16(struct pci_function const *f, uint16_t offset, uint16_t value);

/* Lists every function of bus 0 into functions (at most max) with its BARs sized (memory
 * decoding is turned off on a function while its BARs are sized, then restored). Returns the
 * count. */
unsigned pci_scan(struct pci_function *functions, unsigned max);

/* Gives every unassigned memory BAR of functions[0..count) an address inside
 * [window_base, window_limit), naturally aligned and clear of every BAR already assigned.
 * Returns how many it assigned, or -1 (leaving that BAR unassigned) when one does not fit. */
int pci_assign_bars(struct pci_function *functions, unsigned count, uint64_t window_base, uint64_t window_limit);

/* The offset of the first capability with id at or after the capability at offset start (0:
 * from the head of the list), or 0. The walk is bounded, so a looping list ends. */
uint8_t pci_find_capability(struct pci_function const *f, uint8_t id, uint8_t start);

/* Turns on memory decoding and bus mastering. */
void pci_enable(struct pci_function const *f);
