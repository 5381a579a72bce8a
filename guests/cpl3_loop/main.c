/* cpl3_loop.elf: a compute loop at CPL3, for timing (PVM hosts run CPL3 natively but emulate
 * CPL0). Runs a 64-bit LCG for iterations=N steps (default 100000000) at CPL3 and prints the TSC
 * cycles it took; first checks the CPL3 path by running 1000 steps at CPL0 and at CPL3 and
 * comparing. Exits 0, or 1 on a mismatch, 2 for a malformed iterations=, 3 for bad start info. */
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "idt.h"
#include "usermode.h"

#define DEFAULT_ITERATIONS 100000000ull
#define CHECK_ITERATIONS 1000
#define EXIT_MISMATCH 1
#define EXIT_BAD_OPTION 2
#define EXIT_BAD_START_INFO 3

static struct boot_info boot;

static uint64_t lcg_steps(uint64_t iterations)
{
    uint64_t x = 1;
    for (uint64_t i = 0; i < iterations; ++i)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

void guest_main(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot))
        guest_fail(EXIT_BAD_START_INFO, "start info magic 0x%x version %u", boot.magic, boot.version);
    uint64_t iterations = DEFAULT_ITERATIONS;
    char const *value;
    size_t length;
    if (cmdline_option(boot.cmdline, "iterations", &value, &length) && !parse_number(value, length, &iterations))
        guest_fail(EXIT_BAD_OPTION, "iterations= needs a number");

    idt_init();
    usermode_init();
    uint64_t at_cpl0 = lcg_steps(CHECK_ITERATIONS);
    uint64_t at_cpl3 = run_at_cpl3(lcg_steps, CHECK_ITERATIONS);
    if (at_cpl0 != at_cpl3)
        guest_fail(EXIT_MISMATCH, "%u steps give 0x%lx at cpl0 but 0x%lx at cpl3", CHECK_ITERATIONS, at_cpl0, at_cpl3);
    console_printf("cpl3 check: %u steps give 0x%lx at cpl0 and cpl3\n", CHECK_ITERATIONS, at_cpl3);

    uint64_t start = rdtsc();
    uint64_t result = run_at_cpl3(lcg_steps, iterations);
    uint64_t cycles = rdtsc() - start;
    console_printf("cpl3 loop: %lu iterations in %lu tsc cycles, result 0x%lx\n", iterations, cycles, result);
    guest_exit(GUEST_EXIT_OK);
}
