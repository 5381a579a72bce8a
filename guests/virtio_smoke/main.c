/* virtio_smoke.elf: a driver for modern virtio-pci devices and its checks. Enumerates PCI bus 0
 * (assigning BARs the firmware left unassigned), prints every function, then checks each
 * virtio-blk, virtio-rng and virtio-console device it finds (blk_check.c, rng_check.c,
 * console_check.c); or, with bench=, runs the block benchmark (bench.c); or, with soak=1, the
 * load for pause and resume (soak.c). guests/README.md lists
 * the options, output lines and exit values. */
#include "apic.h"
#include "checks.h"
#include "console.h"
#include "guest.h"
#include "idt.h"
#include "layout.h"
#include "legacy_timer.h"
#include "smp.h"
#include "string.h"
#include "usermode.h"
#include "virtio_wait.h"

/* Where unassigned BARs go: the window kasou gives PCI devices (virtio-pci spec of kasou's bus)
 * and QEMU's 32-bit PCI hole on q35 alike. */
#define BAR_WINDOW_BASE 0xc0000000ul
#define BAR_WINDOW_LIMIT 0xe0000000ul
#define VECTOR_PIC_BASE 0x20
#define DEFAULT_BENCH_SECONDS 5

static struct boot_info boot;
static struct pci_function functions[PCI_MAX_FUNCTIONS];

static bool option_is(char const *value, size_t length, char const *word)
{
    return strlen(word) == length && memcmp(value, word, length) == 0;
}

/* expect=blk,rng,console: the device types that must be present. */
static unsigned parse_expect(void)
{
    char const *value;
    size_t length;
    unsigned mask = 0;
    if (!cmdline_option(boot.cmdline, "expect", &value, &length))
        return 0;
    while (length) {
        size_t n = 0;
        while (n < length && value[n] != ',')
            ++n;
        if (option_is(value, n, "blk"))
            mask |= 1u << VIRTIO_ID_BLOCK;
        else if (option_is(value, n, "rng"))
            mask |= 1u << VIRTIO_ID_RNG;
        else if (option_is(value, n, "console"))
            mask |= 1u << VIRTIO_ID_CONSOLE;
        else
            guest_fail(EXIT_BAD_OPTION, "expect= takes blk, rng and console separated by commas");
        value += n;
        length -= n;
        if (length) {
            ++value;
            --length;
        }
    }
    return mask;
}

/* bench=randread|randwrite qd=N (1..16) seconds=S | requests=N cpl=0|3. Returns whether bench=
 * was given. */
static bool parse_bench(struct bench_options *options, bool use_interrupts)
{
    char const *value;
    size_t length;
    if (!cmdline_option(boot.cmdline, "bench", &value, &length))
        return false;
    if (option_is(value, length, "randread"))
        options->write = false;
    else if (option_is(value, length, "randwrite"))
        options->write = true;
    else
        guest_fail(EXIT_BAD_OPTION, "bench= takes randread or randwrite");
    options->queue_depth = (unsigned)cmdline_number(boot.cmdline, "qd", 1, 1, BENCH_MAX_QUEUE_DEPTH, EXIT_BAD_OPTION);
    options->seconds = cmdline_number(boot.cmdline, "seconds", DEFAULT_BENCH_SECONDS, 1, 3600, EXIT_BAD_OPTION);
    options->requests = cmdline_number(boot.cmdline, "requests", 0, 0, 1ull << 32, EXIT_BAD_OPTION);
    if (!cmdline_option(boot.cmdline, "cpl", &value, &length) || option_is(value, length, "0"))
        options->at_cpl3 = false;
    else if (option_is(value, length, "3"))
        options->at_cpl3 = true;
    else
        guest_fail(EXIT_BAD_OPTION, "cpl= takes 0 or 3");
    if (options->at_cpl3 && use_interrupts)
        guest_fail(EXIT_BAD_OPTION, "cpl=3 needs wait=poll: a loop at cpl3 cannot halt for interrupts");
    return true;
}

/* wait=irq (MSI-X, the default) or wait=poll. */
static bool parse_wait(void)
{
    char const *value;
    size_t length;
    if (!cmdline_option(boot.cmdline, "wait", &value, &length) || option_is(value, length, "irq"))
        return true;
    if (option_is(value, length, "poll"))
        return false;
    guest_fail(EXIT_BAD_OPTION, "wait= takes irq or poll");
}

void open_device(struct virtio_pci_device *dev, struct pci_function *f, uint64_t wanted, struct virtqueue *queues,
                 uint16_t queue_count, uint16_t max_size, uint8_t vector)
{
    char const *error = virtio_pci_start(dev, f, wanted, queues, queue_count, max_size, vector);
    if (error)
        guest_fail(EXIT_DEVICE_INIT, "%s at 00:%02x.%u: %s", virtio_type_name(virtio_pci_type(f)), f->device, f->function, error);
}

uint32_t wait_and_reap(struct virtqueue *vq, char const *what)
{
    void *token;
    uint32_t written;
    if (!virtio_wait_used(vq, rdtsc() + REQUEST_TIMEOUT_CYCLES) || !virtqueue_get_used(vq, &token, &written))
        guest_fail(EXIT_TIMEOUT, "%s: no completion within ~2 s", what);
    return written;
}

static void print_function(struct pci_function const *f)
{
    uint16_t type = virtio_pci_type(f);
    console_printf("pci 00:%02x.%u %04x:%04x class %06x%s%s\n", f->device, f->function, f->vendor, f->device_id,
                   f->class_revision >> 8, type ? " " : "", type ? virtio_type_name(type) : "");
    for (unsigned b = 0; b < PCI_BAR_COUNT; ++b) {
        struct pci_bar const *bar = &f->bars[b];
        if (bar->size && !bar->is_io)
            console_printf("pci 00:%02x.%u bar%u 0x%lx, %lu KiB%s\n", f->device, f->function, b, bar->address,
                           bar->size >> 10, bar->is_64bit ? ", 64-bit" : "");
    }
}

/* Whether key=1 is on the command line. */
static bool option_enabled(char const *key)
{
    char const *value;
    size_t length;
    return cmdline_option(boot.cmdline, key, &value, &length) && option_is(value, length, "1");
}

/* The APs soak=1 starts: all but this CPU, when the trampoline page is RAM. */
static unsigned soak_other_cpus(void)
{
    unsigned count = cpu_count_from_cpuid().count;
    if (count <= 1 || !memmap_is_ram(&boot, AP_TRAMPOLINE_ADDRESS, 4096))
        return 0;
    return count - 1 > SMP_MAX_APS ? SMP_MAX_APS : count - 1;
}

/* move_bars=1: with memory decoding first on at the VMM's addresses (as firmware leaves it),
 * places every memory BAR afresh in the upper half of the window, decoding off meanwhile, as an OS
 * that reassigns resources does; the devices must follow. */
static void move_bars(unsigned count)
{
    for (unsigned i = 0; i < count; ++i) {
        struct pci_function *f = &functions[i];
        pci_enable(f);
        pci_write16(f, PCI_COMMAND, (uint16_t)(pci_read16(f, PCI_COMMAND) & ~PCI_COMMAND_MEMORY));
        for (unsigned b = 0; b < PCI_BAR_COUNT; ++b) {
            if (!f->bars[b].is_io)
                f->bars[b].address = 0;
        }
    }
    uint64_t upper_half = BAR_WINDOW_BASE + (BAR_WINDOW_LIMIT - BAR_WINDOW_BASE) / 2;
    int moved = pci_assign_bars(functions, count, upper_half, BAR_WINDOW_LIMIT);
    if (moved < 0)
        guest_fail(EXIT_PCI_BARS, "cannot move the memory bars into 0x%lx-0x%lx", upper_half, BAR_WINDOW_LIMIT);
    for (unsigned i = 0; i < count; ++i)
        print_function(&functions[i]);
    console_printf("pci: %d memory bars moved by the guest\n", moved);
}

void guest_main(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot))
        guest_fail(EXIT_BAD_START_INFO, "start info magic 0x%x version %u", boot.magic, boot.version);
    unsigned expected = parse_expect();
    bool use_interrupts = parse_wait();
    struct bench_options bench;
    bool benchmark = parse_bench(&bench, use_interrupts);
    bool soak = option_enabled("soak");
    console_printf("virtio_smoke: start (%s)\n", use_interrupts ? "msi-x interrupts" : "polling");

    idt_init();
    usermode_init();
    pic_init(VECTOR_PIC_BASE); /* all 8259 inputs masked */
    if (use_interrupts && !x2apic_supported())
        guest_fail(EXIT_NO_X2APIC, "no x2apic in cpuid: msi-x needs it (or use wait=poll)");
    uint8_t vector = virtio_wait_init(use_interrupts);

    unsigned count = pci_scan(functions, PCI_MAX_FUNCTIONS);
    int assigned = pci_assign_bars(functions, count, BAR_WINDOW_BASE, BAR_WINDOW_LIMIT);
    if (assigned < 0)
        guest_fail(EXIT_PCI_BARS, "cannot place every memory bar inside 0x%lx-0x%lx", BAR_WINDOW_BASE, BAR_WINDOW_LIMIT);
    unsigned found = 0;
    for (unsigned i = 0; i < count; ++i) {
        print_function(&functions[i]);
        uint16_t type = virtio_pci_type(&functions[i]);
        if (type < 32)
            found |= 1u << type;
    }
    console_printf("pci: %u functions on bus 0, %d memory bars assigned by the guest\n", count, assigned);
    if (option_enabled("move_bars"))
        move_bars(count);
    if (expected & ~found)
        guest_fail(EXIT_DEVICE_MISSING, "expected devices missing:%s%s%s",
                   (expected & ~found & (1u << VIRTIO_ID_BLOCK)) ? " virtio-blk" : "",
                   (expected & ~found & (1u << VIRTIO_ID_RNG)) ? " virtio-rng" : "",
                   (expected & ~found & (1u << VIRTIO_ID_CONSOLE)) ? " virtio-console" : "");

    for (unsigned i = 0; i < count; ++i) {
        struct pci_function *f = &functions[i];
        uint16_t type = virtio_pci_type(f);
        if (benchmark || soak) {
            if (type == VIRTIO_ID_BLOCK) {
                if (benchmark)
                    blk_bench(f, vector, &bench);
                else
                    blk_soak(f, vector, soak_other_cpus());
                guest_exit(GUEST_EXIT_OK);
            }
        } else if (type == VIRTIO_ID_BLOCK) {
            blk_check(f, vector, boot.cmdline);
        } else if (type == VIRTIO_ID_RNG) {
            rng_check(f, vector);
        } else if (type == VIRTIO_ID_CONSOLE) {
            console_check(f, vector);
        }
    }
    if (benchmark || soak)
        guest_fail(EXIT_DEVICE_MISSING, "%s needs a virtio-blk device", benchmark ? "bench=" : "soak=1");
    if (use_interrupts)
        console_printf("virtio: %lu queue interrupts\n", virtio_wait_interrupts());
    console_printf("virtio_smoke: all checks passed\n");
    guest_exit(GUEST_EXIT_OK);
}
