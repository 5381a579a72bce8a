#include "virtio_wait.h"

#include "apic.h"
#include "arch.h"
#include "idt.h"

#define WATCHDOG_INITIAL_COUNT 625000u /* 10 ms at KVM's 1 GHz APIC bus, divided by 16 */

static bool halt_for_interrupts;
static uint64_t queue_interrupts;

static void queue_interrupt(struct interrupt_frame *frame)
{
    (void)frame;
    __atomic_add_fetch(&queue_interrupts, 1, __ATOMIC_RELAXED);
    x2apic_eoi();
}

static void watchdog_tick(struct interrupt_frame *frame)
{
    (void)frame;
    x2apic_eoi();
}

uint8_t virtio_wait_init(bool use_interrupts)
{
    halt_for_interrupts = use_interrupts;
    if (!use_interrupts)
        return 0;
    x2apic_enable();
    idt_set_handler(VIRTIO_WAIT_VECTOR, queue_interrupt);
    idt_set_handler(VIRTIO_WATCHDOG_VECTOR, watchdog_tick);
    wrmsr(X2APIC_MSR_TIMER_DIVIDE, APIC_TIMER_DIVIDE_BY_16);
    wrmsr(X2APIC_MSR_LVT_TIMER, APIC_LVT_TIMER_PERIODIC | VIRTIO_WATCHDOG_VECTOR);
    wrmsr(X2APIC_MSR_TIMER_INITIAL, WATCHDOG_INITIAL_COUNT);
    return VIRTIO_WAIT_VECTOR;
}

bool virtio_wait_used(struct virtqueue const *vq, uint64_t deadline)
{
    while (!virtqueue_has_used(vq)) {
        if (deadline_passed(deadline))
            return false;
        if (halt_for_interrupts)
            __asm__ volatile("sti; hlt; cli" : : : "memory"); /* sti's shadow: no wake-up is lost before hlt */
        else
            cpu_relax();
    }
    return true;
}

uint64_t virtio_wait_interrupts(void) { return __atomic_load_n(&queue_interrupts, __ATOMIC_RELAXED); }
