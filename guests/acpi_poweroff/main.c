/* acpi_poweroff.elf: finds the VMM's ACPI tables from hvm_start_info (RSDP -> XSDT -> FADT), checks
 * their signatures and checksums, prints the first module (the initrd) if there is one, then powers
 * off the way a hardware-reduced ACPI OS does: SLP_TYP 5 with SLP_EN to the FADT's sleep control
 * register. The VMM should end with status 0; if the write does nothing the guest fails with 7. */
#include <stdint.h>

#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "string.h"

enum {
    FAIL_NO_RSDP = 1,
    FAIL_BAD_RSDP = 2,
    FAIL_BAD_XSDT = 3,
    FAIL_NO_FADT = 4,
    FAIL_NOT_HW_REDUCED = 5,
    FAIL_NO_SLEEP_REGISTER = 6,
    FAIL_STILL_RUNNING = 7,
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

static uint8_t checksum(uint8_t const *bytes, uint32_t length)
{
    uint8_t sum = 0;
    for (uint32_t i = 0; i < length; ++i)
        sum = (uint8_t)(sum + bytes[i]);
    return sum;
}

static uint32_t read32(uint8_t const *bytes) { return (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24; }

static uint64_t read64(uint8_t const *bytes) { return read32(bytes) | (uint64_t)read32(bytes + 4) << 32; }

/* A system description table at address whose signature and checksum are right, or NULL. */
static uint8_t const *table_at(uint64_t address, char const *signature)
{
    uint8_t const *table = (uint8_t const *)(uintptr_t)address;
    if (address == 0 || address >= 0xC0000000u || memcmp(table, signature, 4) != 0)
        return 0;
    uint32_t length = read32(table + 4);
    if (length < 36 || length > 0x10000 || checksum(table, length) != 0)
        return 0;
    return table;
}

static void print_first_module(struct hvm_start_info const *start_info)
{
    if (start_info->nr_modules == 0) {
        console_printf("modules: none\n");
        return;
    }
    struct hvm_modlist_entry const *module = (struct hvm_modlist_entry const *)(uintptr_t)start_info->modlist_paddr;
    char text[33];
    uint64_t length = module->size < 32 ? module->size : 32;
    memcpy(text, (void const *)(uintptr_t)module->paddr, length);
    text[length] = 0;
    for (uint64_t i = 0; i < length; ++i)
        if (text[i] < 0x20 || text[i] > 0x7e)
            text[i] = '.';
    console_printf("module 0: %lu bytes at 0x%lx, page aligned: %s, starts \"%s\"\n", (unsigned long)module->size,
        (unsigned long)module->paddr, (module->paddr & 0xfff) ? "no" : "yes", text);
}

void guest_main(struct hvm_start_info const *start_info)
{
    print_first_module(start_info);
    uint64_t rsdp_address = start_info->rsdp_paddr;
    if (rsdp_address == 0)
        guest_fail(FAIL_NO_RSDP, "hvm_start_info has no rsdp_paddr");
    uint8_t const *rsdp = (uint8_t const *)(uintptr_t)rsdp_address;
    if (memcmp(rsdp, "RSD PTR ", 8) != 0 || checksum(rsdp, 20) != 0 || rsdp[15] < 2 || checksum(rsdp, 36) != 0)
        guest_fail(FAIL_BAD_RSDP, "no valid ACPI 2.0 RSDP at 0x%lx", (unsigned long)rsdp_address);
    uint8_t const *xsdt = table_at(read64(rsdp + 24), "XSDT");
    if (!xsdt)
        guest_fail(FAIL_BAD_XSDT, "the RSDP's XSDT is missing or corrupt");
    uint8_t const *fadt = 0;
    uint32_t entries = (read32(xsdt + 4) - 36) / 8;
    for (uint32_t i = 0; i < entries && !fadt; ++i)
        fadt = table_at(read64(xsdt + 36 + 8 * i), "FACP");
    if (!fadt)
        guest_fail(FAIL_NO_FADT, "no valid FADT in the XSDT's %u entries", entries);
    console_printf("acpi: rsdp at 0x%lx, xsdt with %u tables, fadt revision %u\n", (unsigned long)rsdp_address, entries, (unsigned)fadt[8]);
    /* ACPI 6.5, 5.2.9: Flags at 112 (bit 20 HW_REDUCED_ACPI), SLEEP_CONTROL_REG at 244 (GAS). */
    if (read32(fadt + 4) < 268 || !(read32(fadt + 112) & (1u << 20)))
        guest_fail(FAIL_NOT_HW_REDUCED, "the FADT is not a hardware-reduced one with sleep registers");
    uint8_t const *sleep_control = fadt + 244;
    if (sleep_control[0] != 1 || read64(sleep_control + 4) == 0 || read64(sleep_control + 4) > 0xffff)
        guest_fail(FAIL_NO_SLEEP_REGISTER, "the sleep control register is not an I/O port");
    uint16_t port = (uint16_t)read64(sleep_control + 4);
    console_printf("acpi: powering off through the sleep control register at port 0x%x\n", port);
    outb(port, (5 << 2) | (1 << 5)); /* SLP_TYP = 5 (the _S5 kasou's DSDT gives), SLP_EN */
    guest_fail(FAIL_STILL_RUNNING, "still running after the S5 write");
}
