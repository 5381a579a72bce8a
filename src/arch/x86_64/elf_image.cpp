#include "arch/x86_64/elf_image.h"

#include <cstring>
#include <elf.h>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::arch::x86_64 {

namespace {

constexpr u32 MAX_PROGRAM_HEADERS = 256;
constexpr u32 MAX_NOTES = 256;

template<class T>
ErrorOr<T> read_at(std::span<u8 const> image, u64 offset, char const* what)
{
    if (offset > image.size() || sizeof(T) > image.size() - offset)
        return make_error(fmt::format("ELF {} at offset {:#x} lies past the end of the {}-byte image", what, offset, image.size()));
    T value;
    std::memcpy(&value, image.data() + offset, sizeof(T));
    return value;
}

u64 align4(u64 value) { return (value + 3) & ~u64 { 3 }; }

ErrorOr<void> parse_notes(std::span<u8 const> image, u64 offset, u64 size, std::vector<ElfNote>& notes)
{
    if (offset > image.size() || size > image.size() - offset)
        return make_error(fmt::format("ELF note segment at {:#x} (+{:#x}) lies past the end of the image", offset, size));
    // Elf32_Nhdr and Elf64_Nhdr have the same layout: three 32-bit words.
    u64 position = 0;
    while (position + sizeof(Elf32_Nhdr) <= size) {
        if (notes.size() >= MAX_NOTES)
            return make_error("ELF image has too many notes");
        auto header = TRY(read_at<Elf32_Nhdr>(image, offset + position, "note header"));
        position += sizeof(Elf32_Nhdr);
        u64 name_size = align4(header.n_namesz);
        u64 description_size = align4(header.n_descsz);
        if (name_size > size - position || description_size > size - position - name_size)
            return make_error(fmt::format("ELF note at offset {:#x} runs past the end of its segment", offset + position));
        ElfNote note;
        char const* name = reinterpret_cast<char const*>(image.data() + offset + position);
        note.name.assign(name, strnlen(name, header.n_namesz));
        note.type = header.n_type;
        u8 const* description = image.data() + offset + position + name_size;
        note.description.assign(description, description + header.n_descsz);
        notes.push_back(std::move(note));
        position += name_size + description_size;
    }
    return {};
}

template<class Ehdr, class Phdr>
ErrorOr<ElfImage> parse_class(std::span<u8 const> image, u16 expected_machine)
{
    auto header = TRY(read_at<Ehdr>(image, 0, "header"));
    if (header.e_machine != expected_machine)
        return make_error(fmt::format("ELF image is for machine {}, not x86", header.e_machine));
    if (header.e_type != ET_EXEC && header.e_type != ET_DYN)
        return make_error(fmt::format("ELF image has type {}, not an executable", header.e_type));
    if (header.e_phnum == 0)
        return make_error("ELF image has no program headers");
    if (header.e_phnum > MAX_PROGRAM_HEADERS)
        return make_error(fmt::format("ELF image has {} program headers (at most {} accepted)", header.e_phnum, MAX_PROGRAM_HEADERS));
    if (header.e_phentsize != sizeof(Phdr))
        return make_error(fmt::format("ELF program header size is {}, expected {}", header.e_phentsize, sizeof(Phdr)));

    ElfImage result;
    result.is_64bit = sizeof(Ehdr) == sizeof(Elf64_Ehdr);
    result.entry = header.e_entry;
    for (u32 i = 0; i < header.e_phnum; ++i) {
        auto program = TRY(read_at<Phdr>(image, header.e_phoff + u64 { i } * sizeof(Phdr), "program header"));
        if (program.p_type == PT_NOTE) {
            TRY(parse_notes(image, program.p_offset, program.p_filesz, result.notes));
            continue;
        }
        if (program.p_type != PT_LOAD || program.p_memsz == 0)
            continue;
        if (program.p_filesz > program.p_memsz)
            return make_error(fmt::format("ELF segment {} has more file bytes ({:#x}) than memory bytes ({:#x})", i,
                program.p_filesz, program.p_memsz));
        if (program.p_offset > image.size() || program.p_filesz > image.size() - program.p_offset)
            return make_error(fmt::format("ELF segment {} (file offset {:#x}, {:#x} bytes) lies past the end of the {}-byte image",
                i, program.p_offset, program.p_filesz, image.size()));
        if (program.p_paddr + program.p_memsz < program.p_paddr)
            return make_error(fmt::format("ELF segment {} at {:#x} (+{:#x}) overflows the address space", i, program.p_paddr,
                program.p_memsz));
        result.segments.push_back(ElfSegment { program.p_offset, program.p_filesz, program.p_paddr, program.p_memsz });
    }
    if (result.segments.empty())
        return make_error("ELF image has no loadable segment");
    for (size_t a = 0; a < result.segments.size(); ++a) {
        for (size_t b = a + 1; b < result.segments.size(); ++b) {
            auto const& x = result.segments[a];
            auto const& y = result.segments[b];
            if (x.physical_address < y.physical_address + y.memory_size && y.physical_address < x.physical_address + x.memory_size)
                return make_error(fmt::format("ELF segments at {:#x} (+{:#x}) and {:#x} (+{:#x}) overlap", x.physical_address,
                    x.memory_size, y.physical_address, y.memory_size));
        }
    }
    return result;
}

} // namespace

bool ElfImage::looks_like_elf(std::span<u8 const> image)
{
    return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

ErrorOr<ElfImage> ElfImage::parse(std::span<u8 const> image)
{
    if (!looks_like_elf(image))
        return make_error("not an ELF image (bad magic)");
    if (image.size() < EI_NIDENT)
        return make_error("ELF image is truncated in its identification bytes");
    if (image[EI_DATA] != ELFDATA2LSB)
        return make_error("ELF image is not little-endian");
    if (image[EI_VERSION] != EV_CURRENT)
        return make_error("ELF image has an unknown version");
    if (image[EI_CLASS] == ELFCLASS64)
        return parse_class<Elf64_Ehdr, Elf64_Phdr>(image, EM_X86_64);
    if (image[EI_CLASS] == ELFCLASS32)
        return parse_class<Elf32_Ehdr, Elf32_Phdr>(image, EM_386);
    return make_error(fmt::format("ELF image has unknown class {}", image[EI_CLASS]));
}

ElfNote const* ElfImage::find_note(std::string_view name, u32 type) const
{
    for (auto const& note : notes) {
        if (note.name == name && note.type == type)
            return &note;
    }
    return nullptr;
}

} // namespace kasou::arch::x86_64
