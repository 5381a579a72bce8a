/* unknown_port.elf: reads port 0x1234 and writes port 0x1235, where no device sits, prints what
 * the read returned (a VMM that ignores unknown ports returns 0xff) and exits with 0. */
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"

#define UNKNOWN_READ_PORT 0x1234
#define UNKNOWN_WRITE_PORT 0x1235

void guest_main(struct hvm_start_info const *start_info)
{
    (void)start_info;
    uint8_t value = inb(UNKNOWN_READ_PORT);
    console_printf("port 0x%x read 0x%02x\n", UNKNOWN_READ_PORT, value);
    outb(UNKNOWN_WRITE_PORT, 0x5a);
    console_printf("port 0x%x written\n", UNKNOWN_WRITE_PORT);
    guest_exit(GUEST_EXIT_OK);
}
