/* outside_ram.elf: reads and writes a guest-physical address outside RAM and outside any device
 * (0xE0000000 unless the command line gives address=ADDR), printing the values read: a VMM
 * returns all ones for reads there and drops writes. Exits with 0 after the accesses; fails
 * (1) if the memory map says the address is RAM, (2) if address= is malformed or not below
 * 4 GiB, (3) if the start info is invalid. */
#include "console.h"
#include "exit.h"
#include "guest.h"

#define DEFAULT_ADDRESS 0xe0000000ull
#define FOUR_GIB (4ull << 30)
#define EXIT_ADDRESS_IS_RAM 1
#define EXIT_BAD_ADDRESS 2
#define EXIT_BAD_START_INFO 3

static struct boot_info boot;

void guest_main(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot))
        guest_fail(EXIT_BAD_START_INFO, "start info magic 0x%x version %u", boot.magic, boot.version);
    uint64_t address = DEFAULT_ADDRESS;
    char const *value;
    size_t length;
    if (cmdline_option(boot.cmdline, "address", &value, &length) &&
        (!parse_number(value, length, &address) || address > FOUR_GIB - 4 || address % 4))
        guest_fail(EXIT_BAD_ADDRESS, "address= must be a 4-byte aligned address below 4 GiB");
    if (memmap_is_ram(&boot, address, 4))
        guest_fail(EXIT_ADDRESS_IS_RAM, "0x%lx is RAM in the memory map", address);

    volatile uint32_t *outside = (volatile uint32_t *)(uintptr_t)address;
    console_printf("outside ram 0x%lx read 0x%08x\n", address, *outside);
    *outside = 0x12345678;
    console_printf("outside ram 0x%lx written 0x12345678, read back 0x%08x\n", address, *outside);
    guest_exit(GUEST_EXIT_OK);
}
