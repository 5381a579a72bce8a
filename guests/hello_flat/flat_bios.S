/*
 * flat_bios.bin, for testing flat guests under QEMU only: a 64 KiB -bios image that holds the
 * flat guest (FLAT_GUEST, included with .incbin) at its start and, at the reset vector, code
 * that recreates kasou's flat entry state: copy the guest to 0x10000, DS = ES = SS = 0x1000,
 * SP = 0xFFF0, jump to 0x1000:0x0000. QEMU maps the image at 0xF0000.
 */
#define BIOS_SEGMENT 0xf000
#define FLAT_SEGMENT 0x1000
#define FLAT_STACK 0xfff0

    .code16
    .section .text, "ax"
payload:
    .incbin FLAT_GUEST
payload_end:

    .org 0xff00
copy_and_enter:
    cli
    cld
    mov $BIOS_SEGMENT, %ax
    mov %ax, %ds
    xor %si, %si
    mov $FLAT_SEGMENT, %ax
    mov %ax, %es
    xor %di, %di
    mov $(payload_end - payload), %cx
    rep movsb
    mov %ax, %ds
    mov %ax, %ss
    mov $FLAT_STACK, %sp
    ljmp $FLAT_SEGMENT, $0

    .org 0xfff0
    ljmp $BIOS_SEGMENT, $copy_and_enter
    .org 0x10000

    .section .note.GNU-stack, "", @progbits
