#include <numeric>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "storage/pool/crc32c.h"
#include "storage/pool/format.h"

namespace kasou::storage {
namespace {

std::span<u8 const> bytes_of(std::string_view text) { return { reinterpret_cast<u8 const*>(text.data()), text.size() }; }

// The check value of CRC-32C (Castagnoli; init 0xFFFFFFFF, reflected, final xor 0xFFFFFFFF).
TEST(Crc32c, StandardCheckValue) { EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u); }

TEST(Crc32c, EmptyInputIsZero) { EXPECT_EQ(crc32c({}), 0u); }

// RFC 3720 (iSCSI), B.4: 32 bytes of zeroes, of ones, ascending and descending.
TEST(Crc32c, Rfc3720Vectors)
{
    std::vector<u8> data(32, 0);
    EXPECT_EQ(crc32c(data), 0x8A9136AAu);
    std::fill(data.begin(), data.end(), 0xFF);
    EXPECT_EQ(crc32c(data), 0x62A8AB43u);
    std::iota(data.begin(), data.end(), u8 { 0 });
    EXPECT_EQ(crc32c(data), 0x46DD794Eu);
    std::iota(data.rbegin(), data.rend(), u8 { 0 });
    EXPECT_EQ(crc32c(data), 0x113FDB5Cu);
}

// A sealed metadata block carries the same checksum as pools written before: the on-disk format
// does not depend on which implementation computes it.
TEST(Crc32c, SealedBlockChecksumIsStable)
{
    Block block {};
    for (size_t i = 0; i < block.size(); ++i)
        block[i] = u8(i * 7 + 3);
    seal_block(block, 0x4B41534F55544553); // any magic
    EXPECT_EQ(view_as<BlockHeader>(block).crc, 0x717FBF5Bu);
    EXPECT_TRUE(verify_block(block, 0x4B41534F55544553, "test block").has_value());
}

} // namespace
} // namespace kasou::storage
