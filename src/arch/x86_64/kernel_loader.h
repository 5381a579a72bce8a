#pragma once

#include <span>

#include "arch/x86_64/boot_entry.h"
#include "arch/x86_64/kernel_options.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kasou::arch::x86_64 {

enum class KernelFormat {
    Flat, // raw real-mode binary (--flat)
    Pvh,  // ELF with a XEN_ELFNOTE_PHYS32_ENTRY note
    BzImage, // Linux bzImage, 64-bit boot protocol
};

struct LoadedKernel {
    KernelFormat format { KernelFormat::Flat };
    BootEntry entry;
    bool is_linux { false }; // the image says it is a Linux kernel
};

// Recognizes a kernel image, checks it whole, then places it and its boot data (command line,
// memory map, start-of-day structures) in guest memory. Every refusal happens before any byte of
// guest memory is written and names the problem; nothing here runs guest code.
ErrorOr<LoadedKernel> load_kernel(memory::GuestMemory const& memory, std::span<u8 const> image, KernelOptions const& options);

} // namespace kasou::arch::x86_64
