/* snapshot_counter.elf: two CPUs that count and checksum their memory for rounds=N rounds
 * (default 3000), for snapshot and restore tests. Each CPU owns a 64 KiB area; in round r it first
 * checks that the area still holds round r-1's pattern word for word, then writes round r's and
 * checks its sum. Progress lines ("cpu C round R") every 100 rounds; at the end the BSP waits for
 * the AP and prints "snapshot_counter: N rounds on 2 cpus, memory intact". A snapshot taken and
 * restored at any point must go unnoticed. Exits 0, 1 when memory lost a write, 2 when the AP did
 * not come up (or there is no x2APIC to start it with), 3 for bad start info, 4 for a malformed rounds=. */
#include "apic.h"
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "idt.h"
#include "layout.h"
#include "smp.h"
#include "start_info.h"

#define EXIT_MEMORY_LOST 1
#define EXIT_NO_AP 2
#define EXIT_BAD_START_INFO 3
#define EXIT_BAD_OPTION 4
#define AREA_WORDS (64 * 1024 / 8)
#define REPORT_EVERY 100

static struct boot_info boot;
static uint64_t areas[2][AREA_WORDS] __attribute__((aligned(4096)));
static uint64_t rounds;
static volatile unsigned ap_done;

static uint64_t pattern(unsigned cpu, uint64_t round, uint64_t word)
{
    uint64_t x = (round + 1) * 0x9e3779b97f4a7c15ull ^ (word << 17) ^ cpu;
    return x ^ (x >> 29);
}

static void count(unsigned cpu)
{
    uint64_t *area = areas[cpu];
    for (uint64_t round = 0; round < rounds; ++round) {
        uint64_t sum = 0, expected = 0;
        for (uint64_t word = 0; word < AREA_WORDS; ++word) {
            if (round > 0 && area[word] != pattern(cpu, round - 1, word))
                guest_fail(EXIT_MEMORY_LOST, "cpu %u round %lu: word %lu holds 0x%lx, not 0x%lx", cpu, round, word, area[word],
                    pattern(cpu, round - 1, word));
            area[word] = pattern(cpu, round, word);
            expected += pattern(cpu, round, word);
        }
        for (uint64_t word = 0; word < AREA_WORDS; ++word)
            sum += area[word];
        if (sum != expected)
            guest_fail(EXIT_MEMORY_LOST, "cpu %u round %lu: sum 0x%lx, not 0x%lx", cpu, round, sum, expected);
        if ((round + 1) % REPORT_EVERY == 0)
            console_printf("cpu %u round %lu\n", cpu, round + 1);
    }
}

static void ap_work(unsigned index)
{
    (void)index;
    count(1);
    ap_done = 1;
}

void guest_main(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot))
        guest_fail(EXIT_BAD_START_INFO, "start info magic 0x%x version %u", boot.magic, boot.version);
    rounds = cmdline_number(boot.cmdline, "rounds", 3000, 1, 1000000000, EXIT_BAD_OPTION);
    idt_init();
    if (!x2apic_supported())
        guest_fail(EXIT_NO_AP, "cpuid offers no x2apic");
    x2apic_enable();
    smp_set_ap_work(ap_work);
    if (smp_start_aps(1, 5 * TSC_CYCLES_ONE_SECOND) != 1)
        guest_fail(EXIT_NO_AP, "the second cpu did not come up");
    console_printf("snapshot_counter: 2 cpus up, %lu rounds\n", rounds);
    count(0);
    while (!ap_done)
        cpu_relax();
    console_printf("snapshot_counter: %lu rounds on 2 cpus, memory intact\n", rounds);
    guest_exit(GUEST_EXIT_OK);
}
