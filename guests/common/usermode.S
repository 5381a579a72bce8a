/*
 * run_at_cpl3(function, argument): saves the callee-saved registers and the kernel stack
 * pointer, then iretq to function at CPL3 (interrupts off) on the user stack, with a return
 * address that executes hlt. hlt is privileged: the #GP it raises at CPL3 is turned by
 * usermode.c into an iretq to usermode_resume on the saved kernel stack, which returns to
 * run_at_cpl3's caller with the function's result in RAX.
 */
#include "layout.h"

#define USER_STACK_SIZE 16384
#define RFLAGS_RESERVED 0x2

    .section .text, "ax"
    .code64
    .globl run_at_cpl3, usermode_exit_instruction, usermode_resume
run_at_cpl3:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, usermode_kernel_rsp(%rip)
    lea user_stack_top - 8(%rip), %rax
    lea usermode_exit_instruction(%rip), %rcx
    mov %rcx, (%rax)
    pushq $(GDT_USER_DATA | 3)
    push %rax
    pushq $RFLAGS_RESERVED
    pushq $(GDT_USER_CODE64 | 3)
    push %rdi
    mov %rsi, %rdi
    iretq

usermode_exit_instruction:
    hlt

usermode_resume:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

    .section .bss.usermode, "aw", @nobits
    .balign 16
    .globl usermode_kernel_rsp
usermode_kernel_rsp:
    .skip 16
user_stack:
    .skip USER_STACK_SIZE
user_stack_top:

    .section .note.GNU-stack, "", @progbits
