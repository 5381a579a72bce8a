#include "start_info.h"

#include "exit.h"
#include "string.h"

bool boot_info_read(struct hvm_start_info const *start_info, struct boot_info *info)
{
    memset(info, 0, sizeof *info);
    info->magic = start_info->magic;
    info->version = start_info->version;
    if (info->magic != HVM_START_MAGIC || info->version < 1)
        return false;
    info->rsdp_paddr = start_info->rsdp_paddr;

    if (start_info->cmdline_paddr) {
        char const *cmdline = (char const *)(uintptr_t)start_info->cmdline_paddr;
        size_t n = 0;
        while (cmdline[n] && n + 1 < BOOT_CMDLINE_MAX) {
            info->cmdline[n] = cmdline[n];
            ++n;
        }
        info->cmdline_truncated = cmdline[n] != '\0';
    }

    uint32_t entries = start_info->memmap_entries;
    if (!start_info->memmap_paddr)
        entries = 0;
    info->memmap_truncated = entries > BOOT_MEMMAP_MAX;
    info->memmap_count = info->memmap_truncated ? BOOT_MEMMAP_MAX : entries;
    memcpy(info->memmap, (void const *)(uintptr_t)start_info->memmap_paddr,
           info->memmap_count * sizeof info->memmap[0]);
    return true;
}

char const *memmap_type_name(uint32_t type)
{
    switch (type) {
    case 1:
        return "ram";
    case 2:
        return "reserved";
    case 3:
        return "acpi";
    case 4:
        return "nvs";
    case 5:
        return "unusable";
    case 6:
        return "disabled";
    case 7:
        return "pmem";
    default:
        return "unknown";
    }
}

bool cmdline_option(char const *cmdline, char const *key, char const **value, size_t *length)
{
    size_t key_length = strlen(key);
    char const *p = cmdline;
    while (*p) {
        while (*p == ' ')
            ++p;
        char const *token = p;
        while (*p && *p != ' ')
            ++p;
        size_t token_length = (size_t)(p - token);
        if (token_length > key_length && memcmp(token, key, key_length) == 0 && token[key_length] == '=') {
            *value = token + key_length + 1;
            *length = token_length - key_length - 1;
            return true;
        }
    }
    return false;
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool parse_number(char const *text, size_t length, uint64_t *result)
{
    unsigned base = 10;
    if (length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text += 2;
        length -= 2;
    }
    unsigned shift = 0;
    if (base == 10 && length > 1) {
        switch (text[length - 1]) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        default:
            break;
        }
        if (shift)
            --length;
    }
    if (length == 0)
        return false;
    uint64_t value = 0;
    for (size_t i = 0; i < length; ++i) {
        int digit = digit_value(text[i]);
        if (digit < 0 || (unsigned)digit >= base)
            return false;
        if (value > (UINT64_MAX - (unsigned)digit) / base)
            return false;
        value = value * base + (unsigned)digit;
    }
    if (shift && value > (UINT64_MAX >> shift))
        return false;
    *result = value << shift;
    return true;
}

bool memmap_is_ram(struct boot_info const *info, uint64_t address, uint64_t size)
{
    for (uint32_t i = 0; i < info->memmap_count; ++i) {
        struct hvm_memmap_entry const *entry = &info->memmap[i];
        if (entry->type == HVM_MEMMAP_TYPE_RAM && address >= entry->addr &&
            address + size <= entry->addr + entry->size)
            return true;
    }
    return false;
}

uint64_t cmdline_number(char const *cmdline, char const *key, uint64_t fallback, uint64_t min, uint64_t max, uint8_t bad_option)
{
    char const *value;
    size_t length;
    uint64_t number = fallback;
    if (cmdline_option(cmdline, key, &value, &length) && (!parse_number(value, length, &number) || number < min || number > max))
        guest_fail(bad_option, "%s= needs a number from %lu to %lu", key, min, max);
    return number;
}
