#include "arch/x86_64/initrd.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/size.h"

namespace kasou::arch::x86_64 {

namespace {

constexpr u64 PAGE_SIZE = 4096;

} // namespace

ErrorOr<u64> initrd_address(memory::GuestMemory const& memory, u64 size, u64 lowest, u64 highest_end)
{
    u64 top = std::min({ highest_end, memory.regions().front().end(), memory::GuestMemory::MMIO_HOLE_START });
    u64 floor = (lowest + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (top < floor || top - floor < size)
        return make_error(fmt::format("initrd ({}) does not fit in guest RAM: {} is free between the kernel's end at {:#x} and {:#x}; "
                                      "give the guest more --memory",
            format_size(size), format_size(top > floor ? top - floor : 0), floor, top));
    u64 address = (top - size) & ~(PAGE_SIZE - 1);
    if (address < floor)
        return make_error(fmt::format("initrd ({}) does not fit page-aligned between {:#x} and {:#x}; give the guest more --memory",
            format_size(size), floor, top));
    return address;
}

} // namespace kasou::arch::x86_64
