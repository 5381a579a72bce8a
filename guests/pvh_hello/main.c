/* pvh_hello.elf: the smallest PVH guest and kasou's start-up benchmark guest. Prints one line,
 * marks the boot timer and exits with 0. */
#include "console.h"
#include "exit.h"
#include "guest.h"

void guest_main(struct hvm_start_info const *start_info)
{
    (void)start_info;
    console_printf("hello from pvh\n");
    boot_timer_mark();
    guest_exit(GUEST_EXIT_OK);
}
