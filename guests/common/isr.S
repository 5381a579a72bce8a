/*
 * Interrupt entry stubs: 256 stubs of 16 bytes each at isr_stubs (idt.c points gate v at
 * isr_stubs + 16 * v). Each pushes a zero error code where the CPU pushes none, then the vector,
 * and joins isr_common, which saves the caller-saved registers and calls
 * interrupt_dispatch(struct interrupt_frame *).
 */
    .section .text, "ax"
    .code64
    .balign 16
    .globl isr_stubs
isr_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushq $0
    .endif
    pushq $vector
    jmp isr_common
    .set vector, vector + 1
    .endr

isr_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov %rsp, %rdi
    cld
    call interrupt_dispatch
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp                   /* vector and error code */
    iretq

    .section .note.GNU-stack, "", @progbits
