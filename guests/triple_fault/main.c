/* triple_fault.elf: loads an empty IDT and raises #UD. The CPU cannot deliver the exception,
 * nor the #GP and #DF that follow, so it shuts down (a triple fault): the VMM sees a shutdown
 * exit. Reaching the debug-exit port means the fault did not happen (exit value 1). */
#include "console.h"
#include "exit.h"
#include "guest.h"

#define EXIT_NO_TRIPLE_FAULT 1

struct empty_idt_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

void guest_main(struct hvm_start_info const *start_info)
{
    (void)start_info;
    console_printf("triple fault: loading an empty idt and raising #UD\n");
    struct empty_idt_pointer empty = {0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(empty) : "memory");
    guest_fail(EXIT_NO_TRIPLE_FAULT, "still running after the triple fault");
}
