/* The legacy timer path: the 8259 PIC pair (remapped away from the exception vectors) and the
 * i8254 PIT channel 0, which raises IRQ 0. */
#pragma once

#include <stdint.h>

/* Initialises both PICs with their IRQs at vector_base .. vector_base + 15, all masked. */
void pic_init(uint8_t vector_base);
/* Unmasks IRQ 0-7 on the master PIC (the only ones the guests use). */
void pic_unmask(unsigned irq);
void pic_mask_all(void);
void pic_eoi(unsigned irq);

#define PIT_HZ 1193182u

/* Programs PIT channel 0 as a rate generator (mode 2) at about hz interrupts a second. */
void pit_start_periodic(unsigned hz);

/* Measures the TSC frequency against PIT channel 2 (gated through port 0x61, no interrupt):
 * counts TSC cycles while the channel counts down ms milliseconds (at most 50) in mode 0.
 * Returns cycles per second, or 0 if the channel's output never rose within ~1 s of TSC. */
uint64_t pit_measure_tsc_hz(unsigned ms);
