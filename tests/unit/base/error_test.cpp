#include <cerrno>

#include <gtest/gtest.h>

#include "base/sys.h"
#include "base/try.h"

using namespace kasou;

namespace {

ErrorOr<int> half(int value)
{
    if (value % 2)
        return make_error("odd");
    return value / 2;
}

ErrorOr<int> quarter(int value)
{
    int h = TRY(half(value));
    return TRY(half(h));
}

} // namespace

TEST(Error, TryPropagatesFirstFailure)
{
    EXPECT_EQ(quarter(8).value(), 2);
    EXPECT_EQ(quarter(6).error().to_string(), "odd");
}

TEST(Error, ErrnoNamesTheCall)
{
    auto result = sys::open("/nonexistent/kasou", 0);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code(), ENOENT);
    EXPECT_NE(result.error().to_string().find("open /nonexistent/kasou"), std::string::npos);
    EXPECT_NE(result.error().with_prefix("disk").to_string().find("disk: open"), std::string::npos);
}
