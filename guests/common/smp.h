/* Multiprocessor start-up: the CPU count from CPUID and INIT/SIPI bring-up of the APs through
 * the x2APIC ICR. Each AP prints "cpu N (apic id X) up", counts itself, runs the work given to
 * smp_set_ap_work() if any, and halts. */
#pragma once

#include <stdint.h>

struct cpu_count {
    unsigned count;
    char const *source; /* which CPUID leaf gave the count */
};

/* CPUID leaf 0xB (the logical processors at the package level) if the CPU has it, else leaf 1
 * EBX[23:16] when HTT is set, else 1. */
struct cpu_count cpu_count_from_cpuid(void);

/* Copies the trampoline to AP_TRAMPOLINE_ADDRESS (the caller checks that this page is RAM),
 * sends INIT, SIPI, SIPI to all CPUs but this one and waits until ap_count APs have reported or
 * timeout_cycles TSC cycles have passed. Returns how many APs reported. */
unsigned smp_start_aps(unsigned ap_count, uint64_t timeout_cycles);

/* What each AP runs after it has reported (index: 0 for the first AP); set before
 * smp_start_aps(). */
void smp_set_ap_work(void (*work)(unsigned index));
