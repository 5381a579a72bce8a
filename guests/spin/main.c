/* spin.elf: prints "spinning" and loops for ever with interrupts off; the VMM must be stopped
 * from outside (kasou on SIGTERM). */
#include "console.h"
#include "guest.h"

void guest_main(struct hvm_start_info const *start_info)
{
    (void)start_info;
    console_printf("spinning\n");
    __asm__ volatile("cli");
    for (;;)
        __asm__ volatile("" : : : "memory");
}
