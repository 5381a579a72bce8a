#include "arch/x86_64/kernel_loader.h"

#include <algorithm>

#include "arch/x86_64/bzimage.h"
#include "arch/x86_64/elf_image.h"
#include "arch/x86_64/flat_loader.h"
#include "arch/x86_64/pvh_loader.h"
#include "base/try.h"

namespace kasou::arch::x86_64 {

ErrorOr<LoadedKernel> load_kernel(memory::GuestMemory const& memory, std::span<u8 const> image, KernelOptions const& options)
{
    LoadedKernel loaded;
    if (options.flat) {
        if (!options.initrd.empty())
            return make_error("--initrd needs a Linux bzImage or a PVH ELF kernel, not a --flat binary");
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
        loaded.entry = TRY(load_pvh(memory, image, elf, options));
        return loaded;
    }
    if (BzImageHeader::looks_like_bzimage(image)) {
        auto header = TRY(BzImageHeader::parse(image));
        loaded.format = KernelFormat::BzImage;
        loaded.is_linux = true;
        loaded.entry = TRY(load_bzimage(memory, image, header, options));
        return loaded;
    }
    return make_error("unrecognized kernel image: not an ELF file nor a Linux bzImage (use --flat for a raw real-mode binary)");
}

} // namespace kasou::arch::x86_64
