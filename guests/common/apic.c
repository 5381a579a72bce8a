#include "apic.h"

#include "arch.h"

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_X2APIC (1u << 10)
#define APIC_SVR_ENABLE (1u << 8)
#define CPUID_1_ECX_X2APIC (1u << 21)

#define IOAPIC_REGISTER_SELECT 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDIRECTION_BASE 0x10
#define IOAPIC_MASKED (1u << 16)

bool x2apic_supported(void) { return cpuid(1, 0).ecx & CPUID_1_ECX_X2APIC; }

void x2apic_enable(void)
{
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
    wrmsr(X2APIC_MSR_SVR, APIC_SVR_ENABLE | APIC_SPURIOUS_VECTOR);
}

uint32_t x2apic_id(void) { return (uint32_t)rdmsr(X2APIC_MSR_ID); }

void x2apic_eoi(void) { wrmsr(X2APIC_MSR_EOI, 0); }

void x2apic_send_ipi(uint32_t destination, uint32_t command)
{
    wrmsr(X2APIC_MSR_ICR, ((uint64_t)destination << 32) | command);
}

static void ioapic_write(uint32_t reg, uint32_t value)
{
    volatile uint32_t *ioapic = (volatile uint32_t *)IOAPIC_BASE;
    ioapic[IOAPIC_REGISTER_SELECT / 4] = reg;
    ioapic[IOAPIC_WINDOW / 4] = value;
}

void ioapic_route(unsigned pin, uint8_t vector, uint32_t destination)
{
    ioapic_write(IOAPIC_REDIRECTION_BASE + 2 * pin + 1, destination << 24);
    ioapic_write(IOAPIC_REDIRECTION_BASE + 2 * pin, vector);
}

void ioapic_mask(unsigned pin) { ioapic_write(IOAPIC_REDIRECTION_BASE + 2 * pin, IOAPIC_MASKED); }
