#include "smp.h"

#include "apic.h"
#include "arch.h"
#include "console.h"
#include "idt.h"
#include "layout.h"
#include "string.h"

#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_B_LEVEL_TYPE_INVALID 0
#define INIT_TO_SIPI_CYCLES 20000000ull /* about 10 ms (Intel SDM vol. 3, 9.4.4.1) */
#define SIPI_TO_SIPI_CYCLES 400000ull   /* about 200 us */

extern char const ap_trampoline_start[];
extern char const ap_trampoline_end[];

static unsigned aps_up;
static void (*ap_work)(unsigned index);

void smp_set_ap_work(void (*work)(unsigned index)) { ap_work = work; }

struct cpu_count cpu_count_from_cpuid(void)
{
    if (cpuid(0, 0).eax >= 0xb) {
        unsigned count = 0;
        for (uint32_t level = 0; level < 8; ++level) {
            struct cpuid_regs r = cpuid(0xb, level);
            if (((r.ecx >> 8) & 0xff) == CPUID_B_LEVEL_TYPE_INVALID)
                break;
            count = r.ebx & 0xffff;
        }
        if (count)
            return (struct cpu_count){count, "cpuid leaf 0xb"};
    }
    struct cpuid_regs r = cpuid(1, 0);
    if (r.edx & CPUID_1_EDX_HTT)
        return (struct cpu_count){(r.ebx >> 16) & 0xff, "cpuid leaf 1"};
    return (struct cpu_count){1, "cpuid leaf 1 (no htt)"};
}

static void delay(uint64_t cycles)
{
    uint64_t deadline = deadline_after(cycles);
    while (!deadline_passed(deadline))
        cpu_relax();
}

unsigned smp_start_aps(unsigned ap_count, uint64_t timeout_cycles)
{
    memcpy((void *)AP_TRAMPOLINE_ADDRESS, ap_trampoline_start, (size_t)(ap_trampoline_end - ap_trampoline_start));
    x2apic_send_ipi(0, APIC_ICR_ALL_EXCLUDING_SELF | APIC_ICR_INIT | APIC_ICR_LEVEL_ASSERT);
    delay(INIT_TO_SIPI_CYCLES);
    for (int i = 0; i < 2; ++i) {
        x2apic_send_ipi(0, APIC_ICR_ALL_EXCLUDING_SELF | APIC_ICR_STARTUP | AP_SIPI_VECTOR);
        delay(SIPI_TO_SIPI_CYCLES);
    }
    uint64_t deadline = deadline_after(timeout_cycles);
    while (__atomic_load_n(&aps_up, __ATOMIC_ACQUIRE) < ap_count && !deadline_passed(deadline))
        cpu_relax();
    return __atomic_load_n(&aps_up, __ATOMIC_ACQUIRE);
}

void ap_main(unsigned index);

void ap_main(unsigned index)
{
    idt_load();
    x2apic_enable();
    console_printf("cpu %u (apic id %u) up\n", index + 1, x2apic_id());
    __atomic_add_fetch(&aps_up, 1, __ATOMIC_RELEASE);
    if (ap_work)
        ap_work(index);
    halt_forever();
}
