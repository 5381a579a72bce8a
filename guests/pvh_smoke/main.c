/*
 * pvh_smoke.elf: the main test guest. Checks the PVH start info, prints the command line and the
 * memory map, samples RAM in every map entry (above 4 GiB too), counts PIT and x2APIC timer
 * interrupts, brings every vCPU up with INIT/SIPI and exits with 0 when all checks pass. Command
 * line hooks: expect_cpus=N, expect_mem=BYTES (see guests/README.md). Exit values: below.
 */
#include "apic.h"
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "idt.h"
#include "layout.h"
#include "memory_check.h"
#include "smp.h"
#include "string.h"
#include "timer_check.h"

enum smoke_exit {
    EXIT_BAD_MAGIC = 1,
    EXIT_BAD_VERSION = 2,
    EXIT_NO_MEMORY_MAP = 3,
    EXIT_RAM_MISMATCH = 4,
    EXIT_NO_PIT_TICKS = 5,
    EXIT_NO_LAPIC_TICKS = 6,
    EXIT_CPUS_MISSING = 7,
    EXIT_EXPECT_CPUS = 8,
    EXIT_EXPECT_MEM = 9,
    EXIT_BAD_OPTION = 10,
    EXIT_NO_X2APIC = 11,
    EXIT_NO_TRAMPOLINE_RAM = 12,
};

#define MIB (UINT64_C(1) << 20)
#define AP_TIMEOUT_CYCLES (5 * TSC_CYCLES_ONE_SECOND)

static struct boot_info boot;

/* The command-line hooks, read before any check runs so a malformed one fails at once. */
struct smoke_options {
    bool has_expect_cpus;
    uint64_t expect_cpus;
    bool has_expect_mem;
    uint64_t expect_mem;
    enum pit_route pit_route;
};

/* Reads the optional numeric option key from the command line; fails the guest if malformed. */
static bool number_option(char const *key, uint64_t *result)
{
    char const *value;
    size_t length;
    if (!cmdline_option(boot.cmdline, key, &value, &length))
        return false;
    if (!parse_number(value, length, result))
        guest_fail(EXIT_BAD_OPTION, "%s= needs a number (decimal with an optional K/M/G suffix, or 0x hex)", key);
    return true;
}

static enum pit_route pit_route_option(void)
{
    char const *value;
    size_t length;
    if (!cmdline_option(boot.cmdline, "pit_route", &value, &length))
        return PIT_ROUTE_ANY;
    if (length == 6 && memcmp(value, "ioapic", 6) == 0)
        return PIT_ROUTE_IOAPIC;
    if (length == 3 && memcmp(value, "pic", 3) == 0)
        return PIT_ROUTE_PIC;
    guest_fail(EXIT_BAD_OPTION, "pit_route= must be ioapic or pic");
}

static struct smoke_options read_options(void)
{
    struct smoke_options options;
    options.has_expect_cpus = number_option("expect_cpus", &options.expect_cpus);
    options.has_expect_mem = number_option("expect_mem", &options.expect_mem);
    options.pit_route = pit_route_option();
    return options;
}

static void check_start_info(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot)) {
        if (boot.magic != HVM_START_MAGIC)
            guest_fail(EXIT_BAD_MAGIC, "start info magic 0x%x, expected 0x%x", boot.magic, HVM_START_MAGIC);
        guest_fail(EXIT_BAD_VERSION, "start info version %u, expected 1 or later", boot.version);
    }
    console_printf("start info: magic 0x%x version %u\n", boot.magic, boot.version);
    console_printf("cmdline: \"%s\"%s\n", boot.cmdline, boot.cmdline_truncated ? " (truncated)" : "");
}

static uint64_t print_memory_map(void)
{
    if (boot.memmap_count == 0)
        guest_fail(EXIT_NO_MEMORY_MAP, "the start info has no memory map");
    console_printf("memmap: %u entries%s\n", boot.memmap_count, boot.memmap_truncated ? " (truncated)" : "");
    uint64_t ram = 0;
    for (uint32_t i = 0; i < boot.memmap_count; ++i) {
        struct hvm_memmap_entry const *entry = &boot.memmap[i];
        console_printf("memmap %u: 0x%016lx-0x%016lx %s\n", i, entry->addr, entry->addr + entry->size,
                       memmap_type_name(entry->type));
        if (entry->type == HVM_MEMMAP_TYPE_RAM)
            ram += entry->size;
    }
    console_printf("ram: %lu bytes (%lu MiB)\n", ram, ram / MIB);
    return ram;
}

static void check_memory(uint64_t ram, struct smoke_options const *options)
{
    unsigned checked = 0;
    unsigned entries = 0;
    for (uint32_t i = 0; i < boot.memmap_count; ++i) {
        struct hvm_memmap_entry const *entry = &boot.memmap[i];
        if (entry->type != HVM_MEMMAP_TYPE_RAM)
            continue;
        ++entries;
        struct memory_failure failure;
        if (!memory_check_range(entry->addr, entry->size, &checked, &failure))
            guest_fail(EXIT_RAM_MISMATCH, "ram at 0x%lx: wrote 0x%lx, read 0x%lx", failure.address, failure.wrote,
                       failure.read);
    }
    console_printf("ram check: %u addresses in %u ram entries ok\n", checked, entries);

    if (options->has_expect_mem) {
        uint64_t expected = options->expect_mem;
        if (ram > expected || expected - ram > MIB)
            guest_fail(EXIT_EXPECT_MEM, "expect_mem=%lu but the map has %lu bytes of ram", expected, ram);
        console_printf("expect_mem: %lu ok (ram %lu, %lu bytes below)\n", expected, ram, expected - ram);
    }
}

static void check_timers(struct smoke_options const *options)
{
    struct timer_result pit = timer_check_pit(options->pit_route);
    if (pit.ticks < TIMER_TICKS_WANTED)
        guest_fail(EXIT_NO_PIT_TICKS, "pit: %u ticks via %s", pit.ticks, pit.path);
    console_printf("pit: %u ticks via %s\n", pit.ticks, pit.path);
    struct timer_result lapic = timer_check_lapic();
    if (lapic.ticks < TIMER_TICKS_WANTED)
        guest_fail(EXIT_NO_LAPIC_TICKS, "lapic timer: %u ticks", lapic.ticks);
    console_printf("lapic timer: %u ticks via %s\n", lapic.ticks, lapic.path);
}

static void check_cpus(struct smoke_options const *options)
{
    struct cpu_count cpus = cpu_count_from_cpuid();
    console_printf("cpus: %u (%s)\n", cpus.count, cpus.source);
    console_printf("cpu 0 (apic id %u) up\n", x2apic_id());
    unsigned up = 1;
    if (cpus.count > 1) {
        if (!memmap_is_ram(&boot, AP_TRAMPOLINE_ADDRESS, 4096))
            guest_fail(EXIT_NO_TRAMPOLINE_RAM, "the ap trampoline page 0x%x is not ram", AP_TRAMPOLINE_ADDRESS);
        unsigned wanted = cpus.count - 1 > SMP_MAX_APS ? SMP_MAX_APS : cpus.count - 1;
        up += smp_start_aps(wanted, AP_TIMEOUT_CYCLES);
    }
    if (up != cpus.count)
        guest_fail(EXIT_CPUS_MISSING, "only %u of %u cpus up", up, cpus.count);
    console_printf("all %u cpus up\n", up);

    if (options->has_expect_cpus) {
        if (options->expect_cpus != up)
            guest_fail(EXIT_EXPECT_CPUS, "expect_cpus=%lu but %u cpus came up", options->expect_cpus, up);
        console_printf("expect_cpus: %lu ok\n", options->expect_cpus);
    }
}

void guest_main(struct hvm_start_info const *start_info)
{
    console_printf("pvh_smoke: start\n");
    check_start_info(start_info);
    struct smoke_options options = read_options();
    check_memory(print_memory_map(), &options);
    idt_init();
    if (!x2apic_supported())
        guest_fail(EXIT_NO_X2APIC, "cpuid offers no x2apic");
    x2apic_enable();
    check_timers(&options);
    check_cpus(&options);
    uint64_t unexpected = idt_unexpected_interrupts();
    if (unexpected)
        console_printf("unexpected interrupts: %lu\n", unexpected);
    console_printf("pvh_smoke: all checks passed\n");
    guest_exit(GUEST_EXIT_OK);
}
