#include "usermode.h"

#include "idt.h"
#include "layout.h"

#define TSS_STACK_SIZE 4096
#define GDT_TSS_AVAILABLE_64 0x89 /* present, DPL 0, available 64-bit TSS */
#define VECTOR_GENERAL_PROTECTION 13
#define RFLAGS_RESERVED 0x2

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t io_map_base;
} __attribute__((packed));

extern uint64_t gdt[];
extern char const usermode_exit_instruction[];
extern char const usermode_resume[];
extern uint64_t usermode_kernel_rsp;

static struct tss tss;
static uint8_t tss_stack[TSS_STACK_SIZE] __attribute__((aligned(16)));

/* The #GP of the hlt that ends a CPL3 call becomes a return to CPL0; any other #GP is fatal. */
static void general_protection(struct interrupt_frame *frame)
{
    if ((frame->cs & 3) != 3 || frame->rip != (uint64_t)(uintptr_t)usermode_exit_instruction)
        idt_fatal_exception(frame);
    frame->rip = (uint64_t)(uintptr_t)usermode_resume;
    frame->cs = GDT_CODE64;
    frame->rflags = RFLAGS_RESERVED;
    frame->rsp = usermode_kernel_rsp;
    frame->ss = GDT_DATA;
}

void usermode_init(void)
{
    tss.rsp[0] = (uint64_t)(uintptr_t)(tss_stack + sizeof tss_stack);
    tss.io_map_base = sizeof tss; /* no I/O permission map: every port faults at CPL3 */
    uint64_t base = (uint64_t)(uintptr_t)&tss;
    uint64_t limit = sizeof tss - 1;
    gdt[GDT_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | ((uint64_t)GDT_TSS_AVAILABLE_64 << 40) |
                       (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt[GDT_TSS / 8 + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"((uint16_t)GDT_TSS));
    idt_set_handler(VECTOR_GENERAL_PROTECTION, general_protection);
}
