#include "exit.h"

#include "arch.h"
#include "console.h"

void guest_exit(uint8_t value)
{
    outb(DEBUG_EXIT_PORT, value);
    halt_forever();
}

void guest_fail(uint8_t value, char const *format, ...)
{
    char line[CONSOLE_LINE_MAX];
    va_list args;
    va_start(args, format);
    format_line(line, sizeof line, format, args);
    va_end(args);
    console_printf("FAIL: %s\n", line);
    guest_exit(value);
}

void boot_timer_mark(void) { outb(BOOT_TIMER_PORT, 0); }
