#pragma once

// Builds small bzImages in memory for loader tests: a setup header as the Linux x86 boot protocol
// lays it out (protocol 2.15, relocatable, 64-bit entry) in front of a protected-mode "kernel" whose
// byte at offset 0x200 is the 64-bit entry. Tests then corrupt single fields.

#include <cstring>
#include <vector>

#include "base/types.h"

namespace kasou::test {

struct BzImageSpec {
    u8 setup_sects { 1 };
    u16 version { 0x020F };
    u16 xloadflags { 0x1 };      // XLF_KERNEL_64
    u8 relocatable { 1 };
    u32 kernel_alignment { 0x200000 };
    u32 initrd_addr_max { 0x7FFF'FFFF };
    u32 cmdline_size { 2047 };
    u64 pref_address { 0x100'0000 };
    u32 init_size { 0x200'0000 };
    u64 kernel_size { 0x2000 };
};

inline std::vector<u8> build_bzimage(BzImageSpec const& spec = {})
{
    u64 setup_size = (u64 { spec.setup_sects } + 1) * 512;
    std::vector<u8> image(setup_size + spec.kernel_size, 0);
    auto put = [&](u64 offset, auto value) { std::memcpy(image.data() + offset, &value, sizeof(value)); };
    put(0x1F1, spec.setup_sects);
    put(0x1F4, static_cast<u32>(spec.kernel_size / 16));
    put(0x1FE, u16 { 0xAA55 });
    put(0x200, u8 { 0xEB });
    put(0x201, u8 { 0x6A }); // header ends at 0x26C
    std::memcpy(image.data() + 0x202, "HdrS", 4);
    put(0x206, spec.version);
    put(0x211, u8 { 0x01 }); // LOADED_HIGH
    put(0x22C, spec.initrd_addr_max);
    put(0x230, spec.kernel_alignment);
    put(0x234, spec.relocatable);
    put(0x236, spec.xloadflags);
    put(0x238, spec.cmdline_size);
    put(0x258, spec.pref_address);
    put(0x260, spec.init_size);
    for (u64 i = 0; i < spec.kernel_size; ++i)
        image[setup_size + i] = static_cast<u8>(i * 7);
    image[setup_size + 0x200] = 0xF4; // hlt at the 64-bit entry
    return image;
}

} // namespace kasou::test
