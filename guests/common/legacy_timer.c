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

#define PIT_CHANNEL2 0x42
#define PIT_CHANNEL2_LOHI_ONE_SHOT 0xb0 /* channel 2, low then high byte, mode 0, binary */
#define PORT_SYSTEM_CONTROL_B 0x61
#define SYSTEM_CONTROL_GATE2 0x01
#define SYSTEM_CONTROL_SPEAKER 0x02
#define SYSTEM_CONTROL_OUT2 0x20
#define PIT_MAX_CALIBRATION_MS 50

uint64_t pit_measure_tsc_hz(unsigned ms)
{
    if (ms == 0 || ms > PIT_MAX_CALIBRATION_MS)
        ms = PIT_MAX_CALIBRATION_MS;
    unsigned count = PIT_HZ / 1000 * ms;
    uint8_t control = inb(PORT_SYSTEM_CONTROL_B);
    outb(PORT_SYSTEM_CONTROL_B, (uint8_t)((control & ~SYSTEM_CONTROL_SPEAKER) | SYSTEM_CONTROL_GATE2));
    outb(PIT_COMMAND, PIT_CHANNEL2_LOHI_ONE_SHOT);
    outb(PIT_CHANNEL2, (uint8_t)count);
    outb(PIT_CHANNEL2, (uint8_t)(count >> 8));
    uint64_t start = rdtsc();
    uint64_t deadline = start + TSC_CYCLES_ONE_SECOND;
    bool expired = false;
    while (!(expired = inb(PORT_SYSTEM_CONTROL_B) & SYSTEM_CONTROL_OUT2) && !deadline_passed(deadline))
        ;
    uint64_t cycles = rdtsc() - start;
    outb(PORT_SYSTEM_CONTROL_B, control);
    if (!expired)
        return 0;
    return cycles * 1000 / ms;
}
