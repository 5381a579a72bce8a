#include "legacy_timer.h"

#include "arch.h"

#define PIC_MASTER_COMMAND 0x20
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_COMMAND 0xa0
#define PIC_SLAVE_DATA 0xa1
#define PIC_ICW1_INIT_WITH_ICW4 0x11
#define PIC_ICW4_8086 0x01
#define PIC_CASCADE_IRQ 2
#define PIC_EOI 0x20

#define PIT_CHANNEL0 0x40
#define PIT_COMMAND 0x43
#define PIT_CHANNEL0_LOHI_RATE_GENERATOR 0x34

static uint8_t pic_master_mask = 0xff;

void pic_init(uint8_t vector_base)
{
    outb(PIC_MASTER_COMMAND, PIC_ICW1_INIT_WITH_ICW4);
    outb(PIC_SLAVE_COMMAND, PIC_ICW1_INIT_WITH_ICW4);
    outb(PIC_MASTER_DATA, vector_base);
    outb(PIC_SLAVE_DATA, vector_base + 8);
    outb(PIC_MASTER_DATA, 1u << PIC_CASCADE_IRQ);
    outb(PIC_SLAVE_DATA, PIC_CASCADE_IRQ);
    outb(PIC_MASTER_DATA, PIC_ICW4_8086);
    outb(PIC_SLAVE_DATA, PIC_ICW4_8086);
    pic_mask_all();
}

void pic_mask_all(void)
{
    pic_master_mask = 0xff;
    outb(PIC_MASTER_DATA, 0xff);
    outb(PIC_SLAVE_DATA, 0xff);
}

void pic_unmask(unsigned irq)
{
    pic_master_mask &= (uint8_t)~(1u << irq);
    outb(PIC_MASTER_DATA, pic_master_mask);
}

void pic_eoi(unsigned irq)
{
    if (irq >= 8)
        outb(PIC_SLAVE_COMMAND, PIC_EOI);
    outb(PIC_MASTER_COMMAND, PIC_EOI);
}

void pit_start_periodic(unsigned hz)
{
    unsigned divisor = PIT_HZ / hz;
    outb(PIT_COMMAND, PIT_CHANNEL0_LOHI_RATE_GENERATOR);
    outb(PIT_CHANNEL0, (uint8_t)divisor);
    outb(PIT_CHANNEL0, (uint8_t)(divisor >> 8));
}
