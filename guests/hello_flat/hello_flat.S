/*
 * hello_flat.bin: kasou's flat boot convention. Entered in real mode at CS:IP = 0x1000:0x0000
 * with DS = ES = SS = 0x1000 and SP = 0xFFF0; prints "hello from real mode" on COM1 (polling
 * LSR bit 5) and exits through the debug-exit port with 0.
 */
#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THR_EMPTY 0x20
#define DEBUG_EXIT_PORT 0xf4

    .code16
    .section .text, "ax"
    .globl flat_start
flat_start:
    cli
    cld
    mov $message, %si
next_char:
    lodsb
    test %al, %al
    jz done
    mov %al, %bl
    mov $COM1_LSR, %dx
wait_transmitter:
    in %dx, %al
    test $LSR_THR_EMPTY, %al
    jz wait_transmitter
    mov $COM1, %dx
    mov %bl, %al
    out %al, %dx
    jmp next_char
done:
    xor %al, %al
    out %al, $DEBUG_EXIT_PORT
halt:
    hlt
    jmp halt

message:
    .asciz "hello from real mode\n"

    .section .note.GNU-stack, "", @progbits
