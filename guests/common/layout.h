/* Constants shared by the assembly entry code and C: segment selectors, the AP trampoline page,
 * stack sizes. */
#pragma once

/* GDT built in entry.S. */
#define GDT_CODE64 0x08
#define GDT_DATA 0x10
#define GDT_CODE32 0x18
#define GDT_USER_DATA 0x20 /* GDT_USER_DATA and GDT_USER_CODE64 follow each other, as SYSRET wants */
#define GDT_USER_CODE64 0x28
#define GDT_TSS 0x30 /* 16 bytes, filled in at run time by usermode.c */
#define GDT_SIZE 64

/* The AP trampoline is copied to this page below 1 MiB; the SIPI vector is its page number. */
#define AP_TRAMPOLINE_ADDRESS 0x8000
#define AP_SIPI_VECTOR (AP_TRAMPOLINE_ADDRESS >> 12)

#define BSP_STACK_SIZE 16384
#define AP_STACK_SIZE 4096
#define SMP_MAX_APS 15
