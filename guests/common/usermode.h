/* Running code at CPL3, where PVM hosts execute guest instructions natively (CPL0 is emulated).
 * The code runs with interrupts off on its own stack over the identity map; it may not touch
 * ports (IOPL is ignored on PVM: an out raises #GP). BSP only. */
#pragma once

#include <stdint.h>

/* Loads a TSS (so that exceptions at CPL3 switch to a CPL0 stack) and takes over #GP, through
 * which a CPL3 call returns (neither int n nor SYSCALL gets back to CPL0 on PVM hosts: int n
 * raises #UD; after SYSCALL, segment loads and port I/O fault as at CPL3). Needs idt_init()
 * first. */
void usermode_init(void);

/* Calls function(argument) at CPL3 and returns its result once it returns. */
uint64_t run_at_cpl3(uint64_t (*function)(uint64_t), uint64_t argument);
