// Feeds arbitrary bytes to the kernel loader as a kernel image: it must either refuse them with an
// error or load them inside guest memory, never read or write outside either.

#include <cstddef>
#include <cstdint>

#include "arch/x86_64/kernel_loader.h"
#include "base/try.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    static auto memory = MUST(memory::GuestMemory::create(16 * MiB));
    arch::x86_64::KernelOptions options { false, "console=ttyS0", {}, 0 };
    (void)arch::x86_64::load_kernel(memory, std::span(data, size), options);
    return 0;
}
