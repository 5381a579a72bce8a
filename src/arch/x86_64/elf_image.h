#pragma once

#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/types.h"

namespace kasou::arch::x86_64 {

// A program segment to load: bytes [file_offset, file_offset + file_size) of the image go to
// guest-physical physical_address; the rest of memory_size is zero-filled.
struct ElfSegment {
    u64 file_offset { 0 };
    u64 file_size { 0 };
    u64 physical_address { 0 };
    u64 memory_size { 0 };
};

struct ElfNote {
    std::string name; // without the terminating NUL
    u32 type { 0 };
    std::vector<u8> description;
};

// An ELF executable for x86 (ELFCLASS32 with EM_386, or ELFCLASS64 with EM_X86_64), little-endian,
// as far as a loader needs it: its loadable segments and the notes of its PT_NOTE segments. parse()
// validates every offset and size against the image, so the result never points outside it; it
// keeps no reference to the bytes it was given.
struct ElfImage {
    bool is_64bit { false };
    u64 entry { 0 };
    std::vector<ElfSegment> segments;
    std::vector<ElfNote> notes;

    static ErrorOr<ElfImage> parse(std::span<u8 const> image);
    static bool looks_like_elf(std::span<u8 const> image);

    ElfNote const* find_note(std::string_view name, u32 type) const;
};

} // namespace kasou::arch::x86_64
