#include "storage/pool/crc32c.h"

#include <array>

namespace kasou::storage {

namespace {

constexpr u32 CRC32C_POLYNOMIAL = 0x82F63B78; // reflected Castagnoli polynomial

constexpr std::array<u32, 256> make_table()
{
    std::array<u32, 256> table {};
    for (u32 i = 0; i < 256; ++i) {
        u32 value = i;
        for (int bit = 0; bit < 8; ++bit)
            value = (value & 1) ? (value >> 1) ^ CRC32C_POLYNOMIAL : value >> 1;
        table[i] = value;
    }
    return table;
}

constexpr auto CRC_TABLE = make_table();

} // namespace

u32 crc32c(std::span<u8 const> data)
{
    u32 crc = 0xFFFFFFFF;
    for (u8 byte : data)
        crc = CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

} // namespace kasou::storage
