#pragma once

#include <string_view>
#include <vector>

#include "base/types.h"

// A small encoder for the ACPI Machine Language kasou's DSDT needs (ACPI 6.5, chapter 20 "ACPI
// Machine Language Specification"; resource descriptors from 6.4). Each function returns the bytes
// of one term, so a namespace is written as nested calls:
//   scope("\\_SB_", { device("COM1", { name("_HID", eisa_id("PNP0501")), ... }) })
// Names are 1 to 4 characters of [A-Z0-9_], padded with '_'; kasou's own tables are the only input,
// so a bad name is a bug in kasou and is not reported as a runtime error.
namespace kasou::arch::x86_64::aml {

using Bytes = std::vector<u8>;

// PkgLength (20.2.4): the length of everything after the opcode, including the PkgLength itself.
Bytes package_length(u64 length_of_rest);

// Integer constants: ZeroOp, OneOp, or the shortest of BytePrefix / WordPrefix / DWordPrefix / QWordPrefix.
Bytes integer(u64 value);
// A string constant (StringPrefix, ASCII, NUL).
Bytes string(std::string_view text);
// A compressed EISA ID such as "PNP0501" (seven characters: three letters, four hex digits).
Bytes eisa_id(std::string_view id);

// DefName: Name (name, value).
Bytes name(std::string_view name, Bytes const& value);
// DefScope: Scope (path) { terms }; path is a NameSeg, optionally preceded by the root prefix '\'.
Bytes scope(std::string_view path, std::vector<Bytes> const& terms);
// DefDevice: Device (name) { terms }.
Bytes device(std::string_view name, std::vector<Bytes> const& terms);
// DefPackage with the given elements.
Bytes package(std::vector<Bytes> const& elements);

// ResourceTemplate () { descriptors } as a Buffer, with the end tag and its checksum byte.
Bytes resource_template(std::vector<Bytes> const& descriptors);
// IO (Decode16, minimum, maximum, alignment, length): small I/O port descriptor (6.4.2.5).
Bytes io_port(u16 minimum, u16 maximum, u8 alignment, u8 length);
// IRQNoFlags () { irq }: small IRQ descriptor, 2-byte form (6.4.2.1).
Bytes irq_no_flags(u8 irq);

// The resource types of address space descriptors (6.4.3.5.1).
enum class AddressSpace : u8 {
    Memory = 0,
    Io = 1,
    BusNumber = 2,
};
// WordBusNumber / WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, [EntireRange], 0,
// minimum, maximum, 0, length): word address space descriptor (6.4.3.5.3) for I/O or bus numbers.
Bytes word_address(AddressSpace space, u16 minimum, u16 maximum);
// DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0,
// minimum, maximum, 0, length): double-word address space descriptor (6.4.3.5.2).
Bytes dword_memory(u32 minimum, u32 maximum);

} // namespace kasou::arch::x86_64::aml
