/* Ending the VM: the debug-exit port (QEMU isa-debug-exit compatible) and the boot-timer marker. */
#pragma once

#include <stdint.h>

#define DEBUG_EXIT_PORT 0xf4
#define BOOT_TIMER_PORT 0x440

/* Exit values shared by every guest; each guest numbers its own failures from 1 upwards. */
#define GUEST_EXIT_OK 0
#define GUEST_EXIT_EXCEPTION 0x7e /* an unexpected CPU exception, reported on the console first */

/* Writes value to the debug-exit port, which ends the VM with status (value << 1) | 1. If the
 * VMM has no such port the CPU halts for good instead. */
__attribute__((noreturn)) void guest_exit(uint8_t value);

/* Prints "FAIL: <reason>" and exits with value. */
__attribute__((noreturn, format(printf, 2, 3))) void guest_fail(uint8_t value, char const *format, ...);

/* Writes the boot-timer port: kasou logs the time since its own start. */
void boot_timer_mark(void);
