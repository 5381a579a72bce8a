/* port_write PORT BYTE: writes one byte to an x86 I/O port (ioperm + outb). The nested tests' Linux
 * guest uses it for kasou's boot-timer port, since Debian's kernel has no /dev/port. Built static so
 * it runs in a busybox-only initramfs. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: port_write PORT BYTE\n");
        return 2;
    }
    unsigned long port = strtoul(argv[1], NULL, 0);
    unsigned long value = strtoul(argv[2], NULL, 0);
    if (port > 0xffff || value > 0xff) {
        fprintf(stderr, "port_write: port must be below 0x10000 and the byte below 0x100\n");
        return 2;
    }
    if (ioperm(port, 1, 1) != 0) {
        perror("port_write: ioperm");
        return 1;
    }
    outb((unsigned char)value, (unsigned short)port);
    return 0;
}
