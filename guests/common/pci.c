#include "pci.h"

#include "arch.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_CONFIG_ENABLE 0x80000000u
#define PCI_DEVICES_PER_BUS 32
#define PCI_FUNCTIONS_PER_DEVICE 8
#define PCI_BAR_IO 0x1u
#define PCI_BAR_MEMORY_TYPE_MASK 0x6u
#define PCI_BAR_MEMORY_TYPE_64 0x4u
#define PCI_BAR_MEMORY_MASK (~0xfull)
#define PCI_CAPABILITY_WALK_LIMIT 48 /* 192 bytes of capabilities hold at most 48 entries */

static void select_register(struct pci_function const *f, uint16_t offset)
{
    uint32_t address = PCI_CONFIG_ENABLE | ((uint32_t)f->device << 11) | ((uint32_t)f->function << 8) | (offset & 0xfc);
    __asm__ volatile("outl %0, %1" : : "a"(address), "Nd"((uint16_t)PCI_CONFIG_ADDRESS) : "memory");
}

uint32_t pci_read32(struct pci_function const *f, uint16_t offset)
{
    uint32_t value;
    select_register(f, offset);
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"((uint16_t)PCI_CONFIG_DATA) : "memory");
    return value;
}

uint16_t pci_read16(struct pci_function const *f, uint16_t offset)
{
    uint16_t value;
    select_register(f, offset);
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"((uint16_t)(PCI_CONFIG_DATA + (offset & 2))) : "memory");
    return value;
}

uint8_t pci_read8(struct pci_function const *f, uint16_t offset)
{
    select_register(f, offset);
    return inb((uint16_t)(PCI_CONFIG_DATA + (offset & 3)));
}

void pci_write32(struct pci_function const *f, uint16_t offset, uint32_t value)
{
    select_register(f, offset);
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"((uint16_t)PCI_CONFIG_DATA) : "memory");
}

void pci_write16(struct pci_function const *f, uint16_t offset, uint16_t value)
{
    select_register(f, offset);
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"((uint16_t)(PCI_CONFIG_DATA + (offset & 2))) : "memory");
}

/* Writes all ones to the BAR (both halves of a 64-bit one), reads the size mask back, restores
 * the address. Returns the number of slots the BAR takes (1 or 2). */
static unsigned size_bar(struct pci_function const *f, unsigned index, struct pci_bar *bar)
{
    uint16_t offset = (uint16_t)(PCI_BAR0 + 4 * index);
    uint32_t low = pci_read32(f, offset);
    bar->is_io = low & PCI_BAR_IO;
    bar->is_64bit = !bar->is_io && (low & PCI_BAR_MEMORY_TYPE_MASK) == PCI_BAR_MEMORY_TYPE_64 && index + 1 < PCI_BAR_COUNT;
    uint32_t high = bar->is_64bit ? pci_read32(f, offset + 4) : 0;

    pci_write32(f, offset, 0xffffffffu);
    uint64_t mask = pci_read32(f, offset);
    if (bar->is_64bit) {
        pci_write32(f, offset + 4, 0xffffffffu);
        mask |= (uint64_t)pci_read32(f, offset + 4) << 32;
        pci_write32(f, offset + 4, high);
    }
    pci_write32(f, offset, low);

    uint64_t flag_bits = bar->is_io ? 0x3ull : 0xfull;
    mask &= ~flag_bits;
    if (!bar->is_64bit && mask)
        mask |= 0xffffffff00000000ull; /* a 32-bit BAR: the bits above it are all fixed */
    bar->size = mask ? ~mask + 1 : 0;
    bar->address = (((uint64_t)high << 32) | low) & ~flag_bits;
    return bar->is_64bit ? 2 : 1;
}

static void read_function(struct pci_function *f)
{
    f->device_id = pci_read16(f, PCI_DEVICE_ID);
    f->class_revision = pci_read32(f, PCI_CLASS_REVISION);
    for (unsigned i = 0; i < PCI_BAR_COUNT; ++i)
        f->bars[i] = (struct pci_bar){ 0, 0, false, false };
    if ((pci_read8(f, PCI_HEADER_TYPE) & 0x7f) != 0)
        return; /* bridges: their two BARs are not needed by the guests */
    uint16_t command = pci_read16(f, PCI_COMMAND);
    pci_write16(f, PCI_COMMAND, command & (uint16_t)~PCI_COMMAND_MEMORY);
    for (unsigned i = 0; i < PCI_BAR_COUNT;)
        i += size_bar(f, i, &f->bars[i]);
    pci_write16(f, PCI_COMMAND, command);
}

unsigned pci_scan(struct pci_function *functions, unsigned max)
{
    unsigned count = 0;
    for (uint8_t device = 0; device < PCI_DEVICES_PER_BUS; ++device) {
        for (uint8_t function = 0; function < PCI_FUNCTIONS_PER_DEVICE && count < max; ++function) {
            struct pci_function *f = &functions[count];
            f->device = device;
            f->function = function;
            f->vendor = pci_read16(f, PCI_VENDOR_ID);
            if (f->vendor == 0xffff) {
                if (function == 0)
                    break;
                continue;
            }
            read_function(f);
            ++count;
            if (function == 0 && !(pci_read8(f, PCI_HEADER_TYPE) & PCI_HEADER_MULTIFUNCTION))
                break;
        }
    }
    return count;
}

static bool overlaps_assigned(struct pci_function const *functions, unsigned count, uint64_t start, uint64_t size,
                              uint64_t *end_of_overlap)
{
    for (unsigned i = 0; i < count; ++i) {
        for (unsigned b = 0; b < PCI_BAR_COUNT; ++b) {
            struct pci_bar const *bar = &functions[i].bars[b];
            if (bar->is_io || !bar->size || !bar->address)
                continue;
            if (start < bar->address + bar->size && bar->address < start + size) {
                *end_of_overlap = bar->address + bar->size;
                return true;
            }
        }
    }
    return false;
}

static bool assign_bar(struct pci_function *functions, unsigned count, struct pci_function *f, unsigned index,
                       uint64_t window_base, uint64_t window_limit)
{
    struct pci_bar *bar = &f->bars[index];
    uint64_t candidate = (window_base + bar->size - 1) & ~(bar->size - 1);
    uint64_t overlap_end;
    /* Each step moves past one assigned BAR, so the loop ends within the window. */
    while (candidate + bar->size <= window_limit && overlaps_assigned(functions, count, candidate, bar->size, &overlap_end))
        candidate = (overlap_end + bar->size - 1) & ~(bar->size - 1);
    if (candidate + bar->size > window_limit || (!bar->is_64bit && candidate + bar->size > 0x100000000ull))
        return false;

    uint16_t offset = (uint16_t)(PCI_BAR0 + 4 * index);
    uint32_t flags = pci_read32(f, offset) & 0xfu;
    pci_write32(f, offset, (uint32_t)candidate | flags);
    if (bar->is_64bit)
        pci_write32(f, offset + 4, (uint32_t)(candidate >> 32));
    bar->address = candidate;
    return true;
}

int pci_assign_bars(struct pci_function *functions, unsigned count, uint64_t window_base, uint64_t window_limit)
{
    int assigned = 0;
    for (unsigned i = 0; i < count; ++i) {
        for (unsigned b = 0; b < PCI_BAR_COUNT; ++b) {
            struct pci_bar *bar = &functions[i].bars[b];
            if (bar->is_io || !bar->size || bar->address)
                continue;
            if (!assign_bar(functions, count, &functions[i], b, window_base, window_limit))
                return -1;
            ++assigned;
        }
    }
    return assigned;
}

uint8_t pci_find_capability(struct pci_function const *f, uint8_t id, uint8_t start)
{
    if (!(pci_read16(f, PCI_STATUS) & PCI_STATUS_CAPABILITIES))
        return 0;
    uint8_t offset = start ? pci_read8(f, (uint16_t)(start + 1)) : pci_read8(f, PCI_CAPABILITY_LIST);
    for (unsigned steps = 0; offset >= 0x40 && steps < PCI_CAPABILITY_WALK_LIMIT; ++steps) {
        offset &= 0xfc;
        if (pci_read8(f, offset) == id)
            return offset;
        offset = pci_read8(f, (uint16_t)(offset + 1));
    }
    return 0;
}

void pci_enable(struct pci_function const *f)
{
    pci_write16(f, PCI_COMMAND, pci_read16(f, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER);
}
