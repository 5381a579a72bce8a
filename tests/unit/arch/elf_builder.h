#pragma once

// Builds small ELF executables in memory for loader tests: a header, program headers, an optional
// PT_NOTE segment and the segments' bytes, laid out back to back.

#include <cstring>
#include <elf.h>
#include <string>
#include <vector>

#include "base/types.h"

namespace kasou::test {

struct SegmentSpec {
    u64 physical_address;
    std::vector<u8> bytes;
    u64 memory_size; // >= bytes.size()
};

struct NoteSpec {
    std::string name;
    u32 type;
    std::vector<u8> description;
};

inline std::vector<u8> pvh_entry_description(u32 entry)
{
    std::vector<u8> bytes(4);
    std::memcpy(bytes.data(), &entry, 4);
    return bytes;
}

template<class T>
void append(std::vector<u8>& out, T const& value)
{
    size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

inline std::vector<u8> note_bytes(std::vector<NoteSpec> const& notes)
{
    std::vector<u8> out;
    for (auto const& note : notes) {
        Elf64_Nhdr header { static_cast<u32>(note.name.size() + 1), static_cast<u32>(note.description.size()), note.type };
        append(out, header);
        out.insert(out.end(), note.name.begin(), note.name.end());
        out.push_back(0);
        out.resize((out.size() + 3) & ~size_t { 3 });
        out.insert(out.end(), note.description.begin(), note.description.end());
        out.resize((out.size() + 3) & ~size_t { 3 });
    }
    return out;
}

// A 64-bit x86 ELF executable.
inline std::vector<u8> build_elf64(u64 entry, std::vector<SegmentSpec> const& segments, std::vector<NoteSpec> const& notes)
{
    auto notes_blob = note_bytes(notes);
    u16 phnum = static_cast<u16>(segments.size() + (notes.empty() ? 0 : 1));
    u64 offset = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
    std::vector<u8> out;
    Elf64_Ehdr header {};
    std::memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = ELFCLASS64;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_type = ET_EXEC;
    header.e_machine = EM_X86_64;
    header.e_version = EV_CURRENT;
    header.e_entry = entry;
    header.e_phoff = sizeof(Elf64_Ehdr);
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_phentsize = sizeof(Elf64_Phdr);
    header.e_phnum = phnum;
    append(out, header);
    std::vector<u8> payload;
    if (!notes.empty()) {
        Elf64_Phdr note {};
        note.p_type = PT_NOTE;
        note.p_offset = offset;
        note.p_filesz = notes_blob.size();
        append(out, note);
        payload.insert(payload.end(), notes_blob.begin(), notes_blob.end());
    }
    for (auto const& segment : segments) {
        Elf64_Phdr program {};
        program.p_type = PT_LOAD;
        program.p_offset = offset + payload.size();
        program.p_paddr = segment.physical_address;
        program.p_vaddr = segment.physical_address;
        program.p_filesz = segment.bytes.size();
        program.p_memsz = segment.memory_size;
        program.p_flags = PF_R | PF_X;
        append(out, program);
        payload.insert(payload.end(), segment.bytes.begin(), segment.bytes.end());
    }
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

// A PVH guest: one segment at 1 MiB holding `code`, entered at its start.
inline std::vector<u8> build_pvh_guest(std::vector<u8> code = { 0xf4 }, u64 address = 0x100000)
{
    return build_elf64(address, { { address, code, code.size() } },
        { { "Xen", 18, pvh_entry_description(static_cast<u32>(address)) } });
}

} // namespace kasou::test
