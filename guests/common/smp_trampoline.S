/*
 * Application-processor start-up. smp.c copies [ap_trampoline_start, ap_trampoline_end) to
 * AP_TRAMPOLINE_ADDRESS; a SIPI starts each AP there in real mode (CS = the page number << 8,
 * IP = 0). The trampoline switches to 32-bit protected mode and joins the BSP's path to long
 * mode (entry.S), which lands in ap_start64: each AP takes the next index, its own stack and
 * calls ap_main(index).
 */
#include "layout.h"

    .section .text, "ax"
    .code16
    .globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl ap_gdt_pointer - ap_trampoline_start
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $GDT_CODE32, $ap_start32
    .balign 8
ap_gdt_pointer:
    .word GDT_SIZE - 1
    .long gdt
ap_trampoline_end:

    .code32
ap_start32:
    mov $GDT_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $ap_start64, %edi
    jmp long_mode_32

    .code64
ap_start64:
    mov $1, %eax
    lock xadd %eax, ap_next_index(%rip)
    cmp $SMP_MAX_APS, %eax
    jae 1f
    lea 1(%rax), %ecx
    .if AP_STACK_SIZE != 4096
    .error "ap_start64 assumes 4 KiB AP stacks"
    .endif
    shl $12, %rcx
    lea ap_stacks(%rip), %rsp
    add %rcx, %rsp
    mov %eax, %edi
    call ap_main
1:  cli
    hlt
    jmp 1b

    .section .bss.ap_stacks, "aw", @nobits
    .balign 16
    .globl ap_next_index
ap_next_index:
    .skip 16
ap_stacks:
    .skip AP_STACK_SIZE * SMP_MAX_APS

    .section .note.GNU-stack, "", @progbits
