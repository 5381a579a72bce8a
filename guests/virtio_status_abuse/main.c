/* virtio_status_abuse.elf: a hostile virtio-pci driver. On the virtio-rng device it breaks the
 * rules of virtio 1.2 (2.1, 3.1.1, 4.1.4.3, 4.1.5) and of PCI while the device runs: clears
 * DRIVER_OK without a reset and sets it again, rewrites queue registers after DRIVER_OK, selects a
 * queue that does not exist, programs a vector beyond the MSI-X table, writes the MSI-X table
 * across two entries and the PBA, writes past the device configuration, sizes the BAR with memory
 * decoding on, moves it, turns memory decoding off, resets with a request in flight. After each it
 * checks what the device answers (DEVICE_NEEDS_RESET, the write ignored, NO_VECTOR) and that a
 * request is still served, after a reset where the device asked for one. Polling only; one line
 * per check; exits 0 when all pass (guests/README.md lists the exit values). */
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "idt.h"
#include "pci.h"
#include "virtio_pci.h"
#include "virtio_wait.h"

#define EXIT_NO_RNG 1
#define EXIT_DEVICE_INIT 2
#define EXIT_TIMEOUT 3
#define EXIT_WRONG 4

/* struct virtio_pci_common_cfg offsets and status bits (virtio 1.2, 4.1.4.3 and 2.1). */
#define CONFIG_MSIX_VECTOR 0x10
#define DEVICE_STATUS 0x14
#define QUEUE_SELECT 0x16
#define QUEUE_SIZE 0x18
#define QUEUE_ENABLE 0x1c
#define QUEUE_DESC 0x20
#define STATUS_RUNNING 0x0f /* ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK */
#define STATUS_DRIVER_OK 0x04
#define STATUS_NEEDS_RESET 0x40

#define BAR_MOVE 0x10000000u /* kasou's BARs sit low in 0xc0000000-0xe0000000: this stays inside */

static struct pci_function functions[PCI_MAX_FUNCTIONS];
static struct virtio_pci_device rng;
static struct virtqueue queue;
static uint8_t sample[64];

static uint8_t common8(uint32_t offset) { return rng.common[offset]; }
static uint16_t common16(uint32_t offset) { return *(volatile uint16_t *)(rng.common + offset); }
static uint32_t common32(uint32_t offset) { return *(volatile uint32_t *)(rng.common + offset); }
static void set_common8(uint32_t offset, uint8_t value) { rng.common[offset] = value; }
static void set_common16(uint32_t offset, uint16_t value) { *(volatile uint16_t *)(rng.common + offset) = value; }
static void set_common32(uint32_t offset, uint32_t value) { *(volatile uint32_t *)(rng.common + offset) = value; }

static void expect(bool ok, char const *what, uint64_t seen)
{
    if (!ok)
        guest_fail(EXIT_WRONG, "%s: read 0x%lx", what, seen);
    console_printf("%s: ok (0x%lx)\n", what, seen);
}

static void open_rng(struct pci_function *f)
{
    char const *error = virtio_pci_open(&rng, f);
    if (!error)
        error = virtio_pci_negotiate(&rng, 0);
    if (!error)
        error = virtio_pci_setup_queue(&rng, &queue, 0, 8, 0);
    if (!error)
        error = virtio_pci_driver_ok(&rng);
    if (error)
        guest_fail(EXIT_DEVICE_INIT, "virtio-rng: %s", error);
}

static void submit(void)
{
    struct virtq_buffer buffer = { sample, sizeof sample, true };
    if (!virtqueue_add(&queue, &buffer, 1, false, sample))
        guest_fail(EXIT_WRONG, "virtio-rng: queue full");
    virtqueue_kick(&queue);
}

/* One 64-byte request, which the device must answer. */
static void request(char const *when)
{
    submit();
    void *token;
    uint32_t written;
    if (!virtio_wait_used(&queue, deadline_after(2 * TSC_CYCLES_ONE_SECOND)) || !virtqueue_get_used(&queue, &token, &written))
        guest_fail(EXIT_TIMEOUT, "virtio-rng: no answer %s", when);
    console_printf("virtio-rng: %u bytes %s\n", written, when);
}

/* Moves every pointer into the BAR by delta, after the driver moved the BAR. */
static void follow_bar(int64_t delta)
{
    rng.common += delta;
    rng.isr += delta;
    rng.device_config += delta;
    rng.notify_base += delta;
    queue.notify = (volatile uint16_t *)((volatile uint8_t *)queue.notify + delta);
    if (rng.msix_table)
        rng.msix_table = (volatile uint32_t *)((volatile uint8_t *)rng.msix_table + delta);
}

static void status_abuse(void)
{
    /* The reported case: DRIVER_OK cleared without a reset, then set again. */
    set_common8(DEVICE_STATUS, STATUS_RUNNING & ~STATUS_DRIVER_OK);
    set_common8(DEVICE_STATUS, STATUS_RUNNING);
    expect(common8(DEVICE_STATUS) == (STATUS_RUNNING | STATUS_NEEDS_RESET), "status after DRIVER_OK cleared and set again", common8(DEVICE_STATUS));

    /* Queue registers after DRIVER_OK are ignored (4.1.4.3.2). */
    set_common16(QUEUE_SELECT, 0);
    set_common16(QUEUE_SIZE, 2);
    set_common16(QUEUE_ENABLE, 0);
    set_common32(QUEUE_DESC, 0x1000);
    expect(common16(QUEUE_SIZE) == queue.size, "queue_size written after DRIVER_OK", common16(QUEUE_SIZE));
    expect(common16(QUEUE_ENABLE) == 1, "queue_enable written 0 after DRIVER_OK", common16(QUEUE_ENABLE));
    expect(common32(QUEUE_DESC) == (uint32_t)(uintptr_t)queue.desc, "queue_desc written after DRIVER_OK", common32(QUEUE_DESC));
    set_common16(QUEUE_SELECT, 200);
    expect(common16(QUEUE_SIZE) == 0, "queue_size of queue 200", common16(QUEUE_SIZE));
    set_common16(QUEUE_SELECT, 0);
    set_common16(CONFIG_MSIX_VECTOR, 0x7ff);
    expect(common16(CONFIG_MSIX_VECTOR) == VIRTIO_MSI_NO_VECTOR, "config_msix_vector beyond the table", common16(CONFIG_MSIX_VECTOR));
}

static void msix_and_config_abuse(struct pci_function const *f)
{
    if (rng.msix_table) {
        /* An 8-byte write at entry 0's control word reaches entry 1's address (entries stay masked). */
        *(volatile uint64_t *)(rng.msix_table + 3) = 1ull | (0xfee01000ull << 32);
        expect(rng.msix_table[4] == 0xfee01000u, "msi-x entry 1 address after a write across entries", rng.msix_table[4]);
        uint32_t pba = pci_read32(f, (uint16_t)(rng.msix_capability + 8));
        volatile uint32_t *pending = (volatile uint32_t *)(uintptr_t)(f->bars[pba & 7].address + (pba & ~7u));
        uint32_t before = *pending;
        *pending = 0xffffffffu;
        expect(*pending == before, "msi-x pba after a write (read-only)", *pending);
    }
    if (rng.device_config) {
        *(volatile uint32_t *)(rng.device_config + 0x10) = 0xdeadbeef;
        uint32_t seen = *(volatile uint32_t *)(rng.device_config + 0x10);
        expect(seen == 0, "device configuration written past its end", seen);
    }
}

/* The memory BAR holding the common configuration (kasou: BAR0; QEMU: BAR4). */
static unsigned common_bar(struct pci_function const *f)
{
    uint64_t common = (uint64_t)(uintptr_t)rng.common;
    for (unsigned b = 0; b < PCI_BAR_COUNT; ++b) {
        struct pci_bar const *bar = &f->bars[b];
        if (!bar->is_io && bar->size && common >= bar->address && common - bar->address < bar->size)
            return b;
    }
    guest_fail(EXIT_DEVICE_INIT, "the common configuration is in no memory bar");
}

static void pci_abuse(struct pci_function *f)
{
    unsigned index = common_bar(f);
    struct pci_bar *bar = &f->bars[index];
    uint16_t offset = (uint16_t)(PCI_BAR0 + 4 * index);

    /* BAR sizing with memory decoding on, then the address put back. */
    uint32_t low = pci_read32(f, offset);
    uint32_t high = bar->is_64bit ? pci_read32(f, offset + 4) : 0;
    pci_write32(f, offset, 0xffffffffu);
    if (bar->is_64bit)
        pci_write32(f, offset + 4, 0xffffffffu);
    uint32_t mask = pci_read32(f, offset);
    pci_write32(f, offset, low);
    if (bar->is_64bit)
        pci_write32(f, offset + 4, high);
    expect((mask & ~0xfu) == (uint32_t)-(uint32_t)bar->size, "bar sized with memory decoding on", mask);
    request("after sizing the bar with decoding on");

    /* The BAR moved while the device runs, decoding on all along. */
    bar->address += BAR_MOVE;
    pci_write32(f, offset, (uint32_t)bar->address | (low & 0xfu));
    follow_bar(BAR_MOVE);
    expect(common8(DEVICE_STATUS) == STATUS_RUNNING, "status at the moved bar", common8(DEVICE_STATUS));
    request("after moving the bar while running");

    /* Memory decoding off: the BAR answers nothing; on again: the device is still there. */
    uint16_t command = pci_read16(f, PCI_COMMAND);
    pci_write16(f, PCI_COMMAND, (uint16_t)(command & ~PCI_COMMAND_MEMORY));
    expect(common8(DEVICE_STATUS) == 0xff, "status with memory decoding off", common8(DEVICE_STATUS));
    pci_write16(f, PCI_COMMAND, command);
    expect(common8(DEVICE_STATUS) == STATUS_RUNNING, "status with memory decoding on again", common8(DEVICE_STATUS));
    request("after memory decoding was off");
}

void guest_main(struct hvm_start_info const *start_info)
{
    (void)start_info;
    console_printf("virtio_status_abuse: start\n");
    idt_init();
    virtio_wait_init(false);
    unsigned count = pci_scan(functions, PCI_MAX_FUNCTIONS);
    if (pci_assign_bars(functions, count, 0xc0000000ul, 0xe0000000ul) < 0)
        guest_fail(EXIT_DEVICE_INIT, "cannot place the memory bars");
    struct pci_function *f = 0;
    for (unsigned i = 0; i < count && !f; ++i) {
        if (virtio_pci_type(&functions[i]) == VIRTIO_ID_RNG)
            f = &functions[i];
    }
    if (!f)
        guest_fail(EXIT_NO_RNG, "no virtio-rng device");

    open_rng(f);
    request("after DRIVER_OK");
    status_abuse();
    msix_and_config_abuse(f);
    virtio_pci_reset(&rng);
    expect(common8(DEVICE_STATUS) == 0, "status after a reset", common8(DEVICE_STATUS));
    open_rng(f);
    request("after the reset");

    pci_abuse(f);

    /* A reset with a request in flight returns once the device let go of it. */
    submit();
    virtio_pci_reset(&rng);
    expect(common8(DEVICE_STATUS) == 0, "status after a reset with a request in flight", common8(DEVICE_STATUS));
    open_rng(f);
    request("after the last reset");

    console_printf("virtio_status_abuse: all checks passed\n");
    guest_exit(GUEST_EXIT_OK);
}
