#pragma once

#include <span>
#include <string>

#include "base/types.h"

namespace kasou::arch::x86_64 {

// What a user hands the kernel loader besides the kernel image itself.
struct KernelOptions {
    bool flat { false };              // --flat: the image is a raw real-mode binary
    std::string command_line;
    std::span<u8 const> initrd {};    // empty: no initrd
    u64 acpi_rsdp { 0 };              // guest-physical RSDP address to tell the kernel; 0: none
};

} // namespace kasou::arch::x86_64
