#include "arch/x86_64/kernel_loader.h"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/elf_image.h"
#include "arch/x86_64/flat_loader.h"
#include "arch/x86_64/pvh_loader.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

namespace {

// The Linux x86 boot protocol's setup header signature "HdrS" at offset 0x202
// (Documentation/arch/x86/boot.rst).
bool looks_like_bzimage(std::span<u8 const> image)
{
    return image.size() >= 0x206 && std::memcmp(image.data() + 0x202, "HdrS", 4) == 0;
}

} // namespace

ErrorOr<LoadedKernel> load_kernel(memory::GuestMemory const& memory, std::span<u8 const> image, KernelOptions const& options)
{
    LoadedKernel loaded;
    if (options.flat) {
        loaded.format = KernelFormat::Flat;
        loaded.entry = TRY(load_flat(memory, image));
        return loaded;
    }
    if (image.empty())
        return make_error("kernel image is empty");
    if (ElfImage::looks_like_elf(image)) {
        auto elf = TRY(ElfImage::parse(image));
        loaded.format = KernelFormat::Pvh;
        loaded.is_linux = std::any_of(elf.notes.begin(), elf.notes.end(), [](ElfNote const& note) { return note.name == "Linux"; });
        loaded.entry = TRY(load_pvh(memory, image, elf, options.command_line));
        return loaded;
    }
    if (looks_like_bzimage(image))
        return make_error("this is a Linux bzImage; kasou does not load the bzImage boot protocol yet: pass the uncompressed vmlinux (ELF with a PVH note) instead");
    return make_error("unrecognized kernel image: not an ELF file (use --flat for a raw real-mode binary)");
}

} // namespace kasou::arch::x86_64
