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
