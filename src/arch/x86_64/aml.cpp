#include "arch/x86_64/aml.h"

#include <algorithm>

namespace kasou::arch::x86_64::aml {

namespace {

// Opcodes and prefixes (ACPI 6.5, 20.3 "AML Byte Stream Byte Values").
constexpr u8 ZERO_OP = 0x00;
constexpr u8 ONE_OP = 0x01;
constexpr u8 NAME_OP = 0x08;
constexpr u8 BYTE_PREFIX = 0x0A;
constexpr u8 WORD_PREFIX = 0x0B;
constexpr u8 DWORD_PREFIX = 0x0C;
constexpr u8 STRING_PREFIX = 0x0D;
constexpr u8 QWORD_PREFIX = 0x0E;
constexpr u8 SCOPE_OP = 0x10;
constexpr u8 BUFFER_OP = 0x11;
constexpr u8 PACKAGE_OP = 0x12;
constexpr u8 EXT_OP_PREFIX = 0x5B;
constexpr u8 DEVICE_OP = 0x82;
constexpr u8 ROOT_CHAR = '\\';

// Small resource descriptor tags (ACPI 6.5, 6.4.2): type in bits 6:3, length in bits 2:0.
constexpr u8 IRQ_NO_FLAGS_TAG = 0x22;
constexpr u8 IO_PORT_TAG = 0x47;
constexpr u8 END_TAG = 0x79;
constexpr u8 DWORD_ADDRESS_TAG = 0x87;
constexpr u8 WORD_ADDRESS_TAG = 0x88;
// General flags: producer (bit 0 clear), positive decode (bit 1 clear), _MIF and _MAF set.
constexpr u8 ADDRESS_FIXED_PRODUCER = 0x0C;
constexpr u8 IO_ENTIRE_RANGE = 0x03;       // I/O type-specific flags: _RNG = both ISA and non-ISA
constexpr u8 MEMORY_READ_WRITE = 0x01;     // memory type-specific flags: _RW, non-cacheable
constexpr u8 IO_DECODE_16 = 0x01;

void append(Bytes& out, Bytes const& more)
{
    // Grown by resize and copy: GCC 12 at -O3 misjudges vector::insert of a range here (-Warray-bounds).
    size_t used = out.size();
    out.resize(used + more.size());
    std::copy(more.begin(), more.end(), out.begin() + static_cast<std::ptrdiff_t>(used));
}

void append_little_endian(Bytes& out, u64 value, size_t bytes)
{
    for (size_t i = 0; i < bytes; ++i)
        out.push_back(static_cast<u8>(value >> (8 * i)));
}

Bytes name_segment(std::string_view name)
{
    Bytes segment(4, '_');
    for (size_t i = 0; i < name.size() && i < 4; ++i)
        segment[i] = static_cast<u8>(name[i]);
    return segment;
}

Bytes name_string(std::string_view path)
{
    Bytes out;
    if (!path.empty() && path.front() == ROOT_CHAR) {
        out.push_back(ROOT_CHAR);
        path.remove_prefix(1);
    }
    append(out, name_segment(path));
    return out;
}

// opcode(s) PkgLength body
Bytes with_package_length(Bytes const& opcode, Bytes const& body)
{
    Bytes out = opcode;
    append(out, package_length(body.size()));
    append(out, body);
    return out;
}

Bytes concatenate(std::vector<Bytes> const& parts)
{
    Bytes out;
    for (auto const& part : parts)
        append(out, part);
    return out;
}

} // namespace

Bytes package_length(u64 length_of_rest)
{
    // One byte holds up to 63 (bits 5:0); n following bytes add 8 bits each above a 4-bit nibble.
    if (length_of_rest + 1 < 0x40)
        return { static_cast<u8>(length_of_rest + 1) };
    for (u8 extra = 1; extra <= 3; ++extra) {
        u64 total = length_of_rest + 1 + extra;
        if (total < (u64 { 1 } << (4 + 8 * extra))) {
            Bytes out { static_cast<u8>((extra << 6) | (total & 0xF)) };
            for (u8 i = 0; i < extra; ++i)
                out.push_back(static_cast<u8>(total >> (4 + 8 * i)));
            return out;
        }
    }
    return {}; // longer than 2^28 bytes: no kasou table comes near it
}

Bytes integer(u64 value)
{
    if (value == 0)
        return { ZERO_OP };
    if (value == 1)
        return { ONE_OP };
    Bytes out;
    if (value <= 0xFF) {
        out.push_back(BYTE_PREFIX);
        append_little_endian(out, value, 1);
    } else if (value <= 0xFFFF) {
        out.push_back(WORD_PREFIX);
        append_little_endian(out, value, 2);
    } else if (value <= 0xFFFF'FFFF) {
        out.push_back(DWORD_PREFIX);
        append_little_endian(out, value, 4);
    } else {
        out.push_back(QWORD_PREFIX);
        append_little_endian(out, value, 8);
    }
    return out;
}

Bytes string(std::string_view text)
{
    Bytes out(text.size() + 2, 0);
    out[0] = STRING_PREFIX;
    std::copy(text.begin(), text.end(), out.begin() + 1);
    return out;
}

Bytes eisa_id(std::string_view id)
{
    // Three letters in 5 bits each ('A' = 1), then four hex digits, stored big-endian in a DWord.
    auto hex = [](char c) -> u32 { return c <= '9' ? static_cast<u32>(c - '0') : static_cast<u32>(c - 'A' + 10); };
    u32 vendor = (static_cast<u32>(id[0] - '@') << 10) | (static_cast<u32>(id[1] - '@') << 5) | static_cast<u32>(id[2] - '@');
    u32 product = (hex(id[3]) << 12) | (hex(id[4]) << 8) | (hex(id[5]) << 4) | hex(id[6]);
    u32 big_endian = (vendor << 16) | product;
    u32 value = ((big_endian >> 24) & 0xFF) | ((big_endian >> 8) & 0xFF00) | ((big_endian << 8) & 0xFF'0000) | (big_endian << 24);
    Bytes out { DWORD_PREFIX };
    append_little_endian(out, value, 4);
    return out;
}

Bytes name(std::string_view name, Bytes const& value)
{
    Bytes out { NAME_OP };
    append(out, name_segment(name));
    append(out, value);
    return out;
}

Bytes scope(std::string_view path, std::vector<Bytes> const& terms)
{
    Bytes body = name_string(path);
    append(body, concatenate(terms));
    return with_package_length({ SCOPE_OP }, body);
}

Bytes device(std::string_view name, std::vector<Bytes> const& terms)
{
    Bytes body = name_segment(name);
    append(body, concatenate(terms));
    return with_package_length({ EXT_OP_PREFIX, DEVICE_OP }, body);
}

Bytes package(std::vector<Bytes> const& elements)
{
    Bytes body { static_cast<u8>(elements.size()) };
    append(body, concatenate(elements));
    return with_package_length({ PACKAGE_OP }, body);
}

Bytes resource_template(std::vector<Bytes> const& descriptors)
{
    Bytes data = concatenate(descriptors);
    data.push_back(END_TAG);
    data.push_back(0); // checksum 0: "the checksum is assumed correct" (6.4.2.9)
    Bytes body = integer(data.size());
    append(body, data);
    return with_package_length({ BUFFER_OP }, body);
}

Bytes io_port(u16 minimum, u16 maximum, u8 alignment, u8 length)
{
    Bytes out { IO_PORT_TAG, IO_DECODE_16 };
    append_little_endian(out, minimum, 2);
    append_little_endian(out, maximum, 2);
    out.push_back(alignment);
    out.push_back(length);
    return out;
}

Bytes word_address(AddressSpace space, u16 minimum, u16 maximum)
{
    Bytes out { WORD_ADDRESS_TAG };
    append_little_endian(out, 13, 2); // length of what follows the length field
    out.push_back(static_cast<u8>(space));
    out.push_back(ADDRESS_FIXED_PRODUCER);
    out.push_back(space == AddressSpace::Io ? IO_ENTIRE_RANGE : 0);
    append_little_endian(out, 0, 2); // granularity
    append_little_endian(out, minimum, 2);
    append_little_endian(out, maximum, 2);
    append_little_endian(out, 0, 2); // translation offset
    append_little_endian(out, u64 { maximum } - minimum + 1, 2);
    return out;
}

Bytes dword_memory(u32 minimum, u32 maximum)
{
    Bytes out { DWORD_ADDRESS_TAG };
    append_little_endian(out, 23, 2);
    out.push_back(static_cast<u8>(AddressSpace::Memory));
    out.push_back(ADDRESS_FIXED_PRODUCER);
    out.push_back(MEMORY_READ_WRITE);
    append_little_endian(out, 0, 4); // granularity
    append_little_endian(out, minimum, 4);
    append_little_endian(out, maximum, 4);
    append_little_endian(out, 0, 4); // translation offset
    append_little_endian(out, u64 { maximum } - minimum + 1, 4);
    return out;
}

Bytes irq_no_flags(u8 irq)
{
    Bytes out { IRQ_NO_FLAGS_TAG };
    append_little_endian(out, u64 { 1 } << irq, 2);
    return out;
}

} // namespace kasou::arch::x86_64::aml
