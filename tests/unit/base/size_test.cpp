#include <gtest/gtest.h>

#include "base/size.h"

using namespace kasou;

TEST(ParseSize, AcceptsUnits)
{
    EXPECT_EQ(parse_size("4096").value(), 4096u);
    EXPECT_EQ(parse_size("512M").value(), 512 * MiB);
    EXPECT_EQ(parse_size("2G").value(), 2 * GiB);
    EXPECT_EQ(parse_size("64KiB").value(), 64 * KiB);
    EXPECT_EQ(parse_size("1.5G").value(), GiB + GiB / 2);
    EXPECT_EQ(parse_size("1t").value(), TiB);
}

TEST(ParseSize, RejectsBadInput)
{
    for (char const* bad : { "", "M", "-1", "12Q", "0.3", "99999999999999999999", "20000000000T" }) {
        auto result = parse_size(bad);
        ASSERT_FALSE(result.has_value()) << bad;
        EXPECT_NE(result.error().to_string().find("invalid size"), std::string::npos);
    }
}

TEST(FormatSize, ReadableUnits)
{
    EXPECT_EQ(format_size(100), "100 B");
    EXPECT_EQ(format_size(512 * MiB), "512 MiB");
    EXPECT_EQ(format_size(GiB + GiB / 2), "1.5 GiB");
}
