#include "timer_check.h"

#include "apic.h"
#include "arch.h"
#include "idt.h"
#include "legacy_timer.h"

#define PIT_TEST_HZ 100
#define VECTOR_PIC_BASE 0x20
#define VECTOR_PIT_PIC (VECTOR_PIC_BASE + 0)
#define VECTOR_PIT_IOAPIC_PIN0 0x30
#define VECTOR_PIT_IOAPIC_PIN2 0x32
#define VECTOR_LAPIC_TIMER 0x40
#define LAPIC_TIMER_INITIAL_COUNT 625000u /* 10 ms at 1 GHz with the divider at 16 */

static unsigned pit_ticks;
static unsigned pit_vector;
static unsigned lapic_ticks;

static void count_tick(unsigned *counter, uint64_t vector)
{
    __atomic_store_n(&pit_vector, (unsigned)vector, __ATOMIC_RELAXED);
    __atomic_add_fetch(counter, 1, __ATOMIC_RELEASE);
}

static void pit_tick_pic(struct interrupt_frame *frame)
{
    count_tick(&pit_ticks, frame->vector);
    pic_eoi(0);
}

static void pit_tick_ioapic(struct interrupt_frame *frame)
{
    count_tick(&pit_ticks, frame->vector);
    x2apic_eoi();
}

static void lapic_tick(struct interrupt_frame *frame)
{
    (void)frame;
    __atomic_add_fetch(&lapic_ticks, 1, __ATOMIC_RELEASE);
    x2apic_eoi();
}

static unsigned wait_for_ticks(unsigned *counter, uint64_t timeout_cycles)
{
    __atomic_store_n(counter, 0, __ATOMIC_RELEASE);
    uint64_t deadline = deadline_after(timeout_cycles);
    irq_enable();
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < TIMER_TICKS_WANTED && !deadline_passed(deadline))
        cpu_relax();
    irq_disable();
    return __atomic_load_n(counter, __ATOMIC_ACQUIRE);
}

struct timer_result timer_check_pit(enum pit_route route)
{
    idt_set_handler(VECTOR_PIT_PIC, pit_tick_pic);
    idt_set_handler(VECTOR_PIT_IOAPIC_PIN0, pit_tick_ioapic);
    idt_set_handler(VECTOR_PIT_IOAPIC_PIN2, pit_tick_ioapic);
    pic_init(VECTOR_PIC_BASE);
    wrmsr(X2APIC_MSR_LVT_LINT0, APIC_LVT_MASKED);
    pit_start_periodic(PIT_TEST_HZ);

    unsigned ticks = 0;
    if (route != PIT_ROUTE_PIC) {
        uint32_t bsp = x2apic_id();
        ioapic_route(0, VECTOR_PIT_IOAPIC_PIN0, bsp);
        ioapic_route(2, VECTOR_PIT_IOAPIC_PIN2, bsp);
        ticks = wait_for_ticks(&pit_ticks, TSC_CYCLES_ONE_SECOND);
        ioapic_mask(0);
        ioapic_mask(2);
        if (ticks >= TIMER_TICKS_WANTED) {
            bool pin0 = __atomic_load_n(&pit_vector, __ATOMIC_RELAXED) == VECTOR_PIT_IOAPIC_PIN0;
            return (struct timer_result){ticks, pin0 ? "ioapic pin 0" : "ioapic pin 2"};
        }
        if (route == PIT_ROUTE_IOAPIC)
            return (struct timer_result){ticks, "ioapic"};
    }

    wrmsr(X2APIC_MSR_LVT_LINT0, APIC_LVT_DELIVERY_EXTINT);
    pic_unmask(0);
    ticks = wait_for_ticks(&pit_ticks, TSC_CYCLES_ONE_SECOND);
    pic_mask_all();
    wrmsr(X2APIC_MSR_LVT_LINT0, APIC_LVT_MASKED);
    return (struct timer_result){ticks, "8259 pic and lapic lint0 extint"};
}

struct timer_result timer_check_lapic(void)
{
    idt_set_handler(VECTOR_LAPIC_TIMER, lapic_tick);
    wrmsr(X2APIC_MSR_TIMER_DIVIDE, APIC_TIMER_DIVIDE_BY_16);
    wrmsr(X2APIC_MSR_LVT_TIMER, APIC_LVT_TIMER_PERIODIC | VECTOR_LAPIC_TIMER);
    wrmsr(X2APIC_MSR_TIMER_INITIAL, LAPIC_TIMER_INITIAL_COUNT);
    unsigned ticks = wait_for_ticks(&lapic_ticks, 2 * TSC_CYCLES_ONE_SECOND);
    wrmsr(X2APIC_MSR_TIMER_INITIAL, 0);
    wrmsr(X2APIC_MSR_LVT_TIMER, APIC_LVT_MASKED);
    return (struct timer_result){ticks, "x2apic timer"};
}
