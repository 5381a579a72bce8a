/* pit_storm.elf: a hostile guest for the PIT. It programs channel 0 with a count of 1 in rate
 * generator mode (mode 2: 1.19 MHz, a rising edge every 838 ns), keeps interrupts off and spins
 * for seconds=N (default 4) of TSC time, then exits 0. The VMM's host timer must not follow the
 * guest's rate: kasou's wakes at most once per 200 us and counts the edges it missed. */
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "start_info.h"

#define EXIT_BAD_START_INFO 1
#define EXIT_BAD_OPTION 2
#define PIT_CHANNEL0 0x40
#define PIT_CONTROL 0x43
#define PIT_CH0_LOBYTE_HIBYTE_MODE2 0x34

static struct boot_info boot;

void guest_main(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot))
        guest_fail(EXIT_BAD_START_INFO, "start info magic 0x%x version %u", boot.magic, boot.version);
    uint64_t seconds = cmdline_number(boot.cmdline, "seconds", 4, 1, 3600, EXIT_BAD_OPTION);
    irq_disable();
    outb(PIT_CONTROL, PIT_CH0_LOBYTE_HIBYTE_MODE2);
    outb(PIT_CHANNEL0, 1);
    outb(PIT_CHANNEL0, 0);
    console_printf("pit_storm: count 1 in mode 2, spinning for %lu s\n", seconds);
    uint64_t end = rdtsc() + seconds * TSC_CYCLES_ONE_SECOND;
    while (rdtsc() < end)
        cpu_relax();
    console_printf("pit_storm: done\n");
    guest_exit(GUEST_EXIT_OK);
}
