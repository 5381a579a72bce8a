/* Interrupt controllers as the guests use them: the local APIC in x2APIC mode (MSRs 0x800+;
 * xAPIC MMIO writes from CPL0 are lost on PVM hosts) and the IOAPIC at 0xFEC00000. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define X2APIC_MSR_ID 0x802
#define X2APIC_MSR_EOI 0x80b
#define X2APIC_MSR_SVR 0x80f
#define X2APIC_MSR_ICR 0x830
#define X2APIC_MSR_LVT_TIMER 0x832
#define X2APIC_MSR_LVT_LINT0 0x835
#define X2APIC_MSR_TIMER_INITIAL 0x838
#define X2APIC_MSR_TIMER_DIVIDE 0x83e

#define APIC_LVT_MASKED (1u << 16)
#define APIC_LVT_TIMER_PERIODIC (1u << 17)
#define APIC_LVT_DELIVERY_EXTINT (7u << 8)
#define APIC_TIMER_DIVIDE_BY_16 0x3

/* ICR: delivery mode, level, destination shorthand (Intel SDM vol. 3, 11.6.1). */
#define APIC_ICR_INIT (5u << 8)
#define APIC_ICR_STARTUP (6u << 8)
#define APIC_ICR_LEVEL_ASSERT (1u << 14)
#define APIC_ICR_ALL_EXCLUDING_SELF (3u << 18)

#define APIC_SPURIOUS_VECTOR 0xff

/* CPUID.1:ECX bit 21. */
bool x2apic_supported(void);

/* Enables this CPU's local APIC in x2APIC mode with the spurious vector APIC_SPURIOUS_VECTOR. */
void x2apic_enable(void);

uint32_t x2apic_id(void);
void x2apic_eoi(void);
void x2apic_send_ipi(uint32_t destination, uint32_t command);

#define IOAPIC_BASE 0xfec00000ull

/* Routes IOAPIC input pin to vector on the CPU with APIC id destination: fixed delivery, edge
 * triggered, active high, physical destination. */
void ioapic_route(unsigned pin, uint8_t vector, uint32_t destination);
void ioapic_mask(unsigned pin);
