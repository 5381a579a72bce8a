/* The PVH start-of-day structure (Xen include/public/arch-x86/hvm/start_info.h) and a copy of
 * what the guests use from it, taken before anything can overwrite the VMM's boot data. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    /* Version 1 and later: */
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

#define HVM_MEMMAP_TYPE_RAM 1

#define BOOT_CMDLINE_MAX 1024
#define BOOT_MEMMAP_MAX 64

/* Everything a guest reads from hvm_start_info. Invariant: memmap_count <= BOOT_MEMMAP_MAX and
 * cmdline is NUL-terminated; the *_truncated flags say when the VMM gave more than fits. */
struct boot_info {
    uint32_t magic;
    uint32_t version;
    uint64_t rsdp_paddr;
    char cmdline[BOOT_CMDLINE_MAX];
    bool cmdline_truncated;
    uint32_t memmap_count;
    bool memmap_truncated;
    struct hvm_memmap_entry memmap[BOOT_MEMMAP_MAX];
};

/* Copies start_info into info. Returns false, with only magic and version filled in, unless the
 * magic matches and the version is at least 1 (the first with a memory map). */
bool boot_info_read(struct hvm_start_info const *start_info, struct boot_info *info);

char const *memmap_type_name(uint32_t type);

/* Finds the space-separated token "key=value" in cmdline and returns value (up to the next
 * space or the end) in *value / *length. */
bool cmdline_option(char const *cmdline, char const *key, char const **value, size_t *length);

/* Parses a decimal number, or hexadecimal with 0x, optionally followed (decimal only) by one
 * binary suffix K, M or G (as in "64M"). Rejects empty text, other characters and overflow. */
bool parse_number(char const *text, size_t length, uint64_t *result);

/* The number given as key= on cmdline (parse_number's syntax), or fallback when there is none; a
 * malformed value or one outside [min, max] fails the guest with exit value bad_option. */
uint64_t cmdline_number(char const *cmdline, char const *key, uint64_t fallback, uint64_t min, uint64_t max, uint8_t bad_option);

/* Whether [address, address + size) lies inside one RAM entry of the memory map. */
bool memmap_is_ram(struct boot_info const *info, uint64_t address, uint64_t size);
