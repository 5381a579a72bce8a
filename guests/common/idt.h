/* The interrupt descriptor table: CPU exceptions end the VM with a report on the console;
 * other vectors go to the handler installed for them, or are counted as unexpected. */
#pragma once

#include <stdint.h>

/* Saved by isr.S, lowest address first. */
struct interrupt_frame {
    uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*interrupt_handler)(struct interrupt_frame *frame);

/* Installs the exception gates (vectors 0-31) and loads the IDT on this CPU. */
void idt_init(void);

/* Loads the IDT that idt_init built on another CPU (an AP). */
void idt_load(void);

/* Routes vector to handler. Handlers run with interrupts off and must not print. A handler for
 * an exception vector (0-31) replaces the default report-and-exit, which it can still call. */
void idt_set_handler(uint8_t vector, interrupt_handler handler);

/* The default for exceptions: prints "FAIL: exception ..." and exits with GUEST_EXIT_EXCEPTION. */
__attribute__((noreturn)) void idt_fatal_exception(struct interrupt_frame const *frame);

/* How many interrupts arrived on a vector with no handler (e.g. a spurious 8259 IRQ 7). */
uint64_t idt_unexpected_interrupts(void);
