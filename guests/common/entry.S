/*
 * PVH entry (Xen start_info ABI): the VMM enters pvh_start32 in 32-bit protected mode, paging
 * off, with EBX = guest-physical address of struct hvm_start_info. This code loads its own GDT,
 * turns on long mode with the identity page tables below (the first 4 GiB in 2 MiB pages, built
 * at assembly time so the emulated CPL0 start-up costs a few dozen instructions) and calls
 * guest_main(start_info) on the BSP stack. Application processors reach long_mode_32 from the
 * trampoline in smp_trampoline.S and share the same path.
 */
#include "layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define CR0_PE 0x00000001
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define PTE_PRESENT_RW_USER 0x7
#define PDE_LARGE_PAGE_USER 0x87

    .section .note.pvh, "a", @note
    .balign 4
    .long 4                         /* name size: "Xen\0" */
    .long 8                         /* descriptor size: a 64-bit address, as in ELF64 vmlinux */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4

    .section .text.entry, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi                  /* start_info, passed on to guest_main */
    mov $bsp_start64, %edi

/* Enters long mode and jumps to the 64-bit address in EDI. Needs flat 32-bit segments, paging
 * off; keeps ESI. */
    .globl long_mode_32
long_mode_32:
    lgdt gdt_pointer
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0
    ljmp $GDT_CODE64, $long_mode_64

    .code64
long_mode_64:
    mov $GDT_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov %edi, %edi                  /* upper halves are undefined after the mode switch */
    mov %esi, %esi
    jmp *%rdi

bsp_start64:
    lea bsp_stack_top(%rip), %rsp
    mov %esi, %edi
    call guest_main
    cli
1:  hlt
    jmp 1b

    .section .data.gdt, "aw"
    .balign 8
    .globl gdt
gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* GDT_CODE64: long mode code */
    .quad 0x00cf92000000ffff        /* GDT_DATA: flat data */
    .quad 0x00cf9a000000ffff        /* GDT_CODE32: flat 32-bit code */
    .quad 0x00cff2000000ffff        /* GDT_USER_DATA: flat data, DPL 3 */
    .quad 0x00affa000000ffff        /* GDT_USER_CODE64: long mode code, DPL 3 */
    .quad 0, 0                      /* GDT_TSS */
gdt_pointer:
    .word GDT_SIZE - 1
    .long gdt

/* Identity map of the first 4 GiB with 2 MiB pages, user-accessible so that code run at CPL3
 * (usermode.c) can use it (SMEP and SMAP stay off); PDPT slots 4..511 are free for
 * physical_pointer() (paging.c) to map memory above 4 GiB. */
    .section .data.page_tables, "aw"
    .balign 4096
    .globl pml4, pdpt
pml4:
    .quad pdpt + PTE_PRESENT_RW_USER
    .fill 511, 8, 0
pdpt:
    .quad page_directories + PTE_PRESENT_RW_USER
    .quad page_directories + 0x1000 + PTE_PRESENT_RW_USER
    .quad page_directories + 0x2000 + PTE_PRESENT_RW_USER
    .quad page_directories + 0x3000 + PTE_PRESENT_RW_USER
    .fill 508, 8, 0
page_directories:
    .set large_page, 0
    .rept 2048
    .quad (large_page << 21) + PDE_LARGE_PAGE_USER
    .set large_page, large_page + 1
    .endr

    .section .bss.stack, "aw", @nobits
    .balign 16
bsp_stack:
    .skip BSP_STACK_SIZE
bsp_stack_top:

    .section .note.GNU-stack, "", @progbits
