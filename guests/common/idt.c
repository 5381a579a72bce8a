#include "idt.h"

#include "arch.h"
#include "console.h"
#include "exit.h"
#include "layout.h"

#define IDT_VECTORS 256
#define IDT_GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define ISR_STUB_SIZE 16
#define EXCEPTION_VECTORS 32

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_middle;
    uint32_t offset_high;
    uint32_t reserved;
} __attribute__((packed));

struct idt_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

extern char const isr_stubs[];

static struct idt_gate idt[IDT_VECTORS] __attribute__((aligned(16)));
static interrupt_handler handlers[IDT_VECTORS];
static uint64_t unexpected_interrupts;

static void set_gate(unsigned vector)
{
    uint64_t target = (uint64_t)(isr_stubs + ISR_STUB_SIZE * vector);
    idt[vector] = (struct idt_gate){
        .offset_low = (uint16_t)target,
        .selector = GDT_CODE64,
        .ist = 0,
        .type = IDT_GATE_INTERRUPT,
        .offset_middle = (uint16_t)(target >> 16),
        .offset_high = (uint32_t)(target >> 32),
        .reserved = 0,
    };
}

void idt_load(void)
{
    struct idt_pointer pointer = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" : : "m"(pointer));
}

void idt_init(void)
{
    for (unsigned vector = 0; vector < EXCEPTION_VECTORS; ++vector)
        set_gate(vector);
    idt_load();
}

void idt_set_handler(uint8_t vector, interrupt_handler handler)
{
    handlers[vector] = handler;
    set_gate(vector);
}

uint64_t idt_unexpected_interrupts(void) { return __atomic_load_n(&unexpected_interrupts, __ATOMIC_RELAXED); }

void interrupt_dispatch(struct interrupt_frame *frame);

void idt_fatal_exception(struct interrupt_frame const *frame)
{
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    console_emergency_printf("FAIL: exception %lu at rip 0x%lx error 0x%lx cr2 0x%lx\n", frame->vector, frame->rip,
                             frame->error_code, cr2);
    guest_exit(GUEST_EXIT_EXCEPTION);
}

void interrupt_dispatch(struct interrupt_frame *frame)
{
    interrupt_handler handler = handlers[frame->vector];
    if (handler)
        handler(frame);
    else if (frame->vector < EXCEPTION_VECTORS)
        idt_fatal_exception(frame);
    else
        __atomic_add_fetch(&unexpected_interrupts, 1, __ATOMIC_RELAXED);
}
