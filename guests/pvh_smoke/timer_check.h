/* Counts timer interrupts on the BSP: the PIT (IRQ 0) through the IOAPIC or else through the
 * 8259 PIC and LAPIC LINT0 in ExtINT mode, and the x2APIC timer. Needs idt_init() and
 * x2apic_enable() first; leaves every timer source masked again. */
#pragma once

#define TIMER_TICKS_WANTED 3

struct timer_result {
    unsigned ticks;
    char const *path; /* how the interrupts arrived */
};

/* Which ways the PIT interrupt may take. */
enum pit_route {
    PIT_ROUTE_ANY,    /* the IOAPIC, and the 8259 if no tick came through the IOAPIC */
    PIT_ROUTE_IOAPIC, /* IOAPIC pins 0 and 2 (KVM's default routing uses pin 0, QEMU's pin 2) */
    PIT_ROUTE_PIC,    /* the 8259 PIC, its output through LAPIC LINT0 in ExtINT mode */
};

/* Waits up to a second per route for TIMER_TICKS_WANTED PIT ticks. */
struct timer_result timer_check_pit(enum pit_route route);

/* Runs the x2APIC timer periodically (about 10 ms a tick at KVM's 1 GHz APIC bus) and waits up
 * to two seconds for TIMER_TICKS_WANTED ticks. */
struct timer_result timer_check_lapic(void);
