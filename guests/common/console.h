/* Line output on the COM1 16550A UART, polled (LSR bit 5), safe to call from several CPUs: each
 * console_printf call emits its whole line under one spin lock, so lines never interleave. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#define COM1_PORT 0x3f8
#define CONSOLE_LINE_MAX 256

/* A printf subset: %s %c %d %u %x with an optional '0' flag, a width and an 'l' length
 * (%lu, %lx, %016lx). Formats into buffer (always NUL-terminated) and returns the length. */
size_t format_line(char *buffer, size_t size, char const *format, va_list args);

__attribute__((format(printf, 1, 2))) void console_printf(char const *format, ...);

/* As console_printf but without taking the lock: for exception handlers, which end the VM. */
__attribute__((format(printf, 1, 2))) void console_emergency_printf(char const *format, ...);
