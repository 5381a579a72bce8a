#include <cerrno>
#include <fcntl.h>
#include <set>
#include <string_view>
#include <type_traits>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/sys_file.h"
#include "base/sys_path.h"
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

TEST(Error, ErrnoErrorsTakeTheKindOfTheirErrno)
{
    auto missing = sys::open("/nonexistent/kasou", 0);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(kind_name(missing.error().kind()), "not_found");

    auto directory = sys::make_temp_dir("/tmp/kasou-error-XXXXXX");
    ASSERT_TRUE(directory) << directory.error().to_string();
    auto exists = sys::open(*directory, O_RDONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_FALSE(exists);
    EXPECT_EQ(exists.error().kind(), ErrorKind::AlreadyExists);
    auto is_directory = sys::open(*directory, O_WRONLY);
    ASSERT_FALSE(is_directory);
    EXPECT_EQ(is_directory.error().kind(), ErrorKind::InvalidInput);
    EXPECT_EQ(::rmdir(directory->c_str()), 0);

    struct Case {
        int code;
        ErrorKind kind;
    };
    for (auto [code, kind] : { Case { EBUSY, ErrorKind::Busy }, Case { EAGAIN, ErrorKind::Busy }, Case { ENOSYS, ErrorKind::Unsupported },
             Case { EOPNOTSUPP, ErrorKind::Unsupported }, Case { EACCES, ErrorKind::PermissionDenied },
             Case { EROFS, ErrorKind::PermissionDenied }, Case { ENOSPC, ErrorKind::NoSpace }, Case { ENOMEM, ErrorKind::ResourceExhausted },
             Case { EBADMSG, ErrorKind::Corrupt }, Case { EPIPE, ErrorKind::Disconnected }, Case { ETIMEDOUT, ErrorKind::TimedOut },
             Case { ECANCELED, ErrorKind::Interrupted }, Case { EBADF, ErrorKind::Internal }, Case { EIO, ErrorKind::Io },
             Case { EXFULL, ErrorKind::Io } }) // an errno value no kind lists is an I/O failure
        EXPECT_EQ(Error::from_errno(code, "call").kind(), kind) << "errno " << code;
}

TEST(Error, NamedConditionsAreInvalidInputUnlessGivenAKind)
{
    EXPECT_EQ(quarter(6).error().kind(), ErrorKind::InvalidInput);
    ErrorOr<void> taken = make_error(ErrorKind::NotFound, "no pool named 'tank'");
    EXPECT_EQ(taken.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(taken.error().code(), 0);
    EXPECT_EQ(taken.error().to_string(), "no pool named 'tank'");
}

TEST(Error, PrefixKeepsKindAndErrno)
{
    Error prefixed = Error::from_errno(ENOSPC, "pwrite").with_prefix("volume v");
    EXPECT_EQ(prefixed.kind(), ErrorKind::NoSpace);
    EXPECT_EQ(prefixed.code(), ENOSPC);
    EXPECT_EQ(prefixed.to_string().rfind("volume v: pwrite: ", 0), 0u) << prefixed.to_string();
    EXPECT_EQ(Error::from_string("busy", ErrorKind::Busy).with_prefix("pool tank").kind(), ErrorKind::Busy);
}

TEST(Error, EveryKindHasItsOwnName)
{
    std::set<std::string_view> names;
    for (int kind = 0; kind <= static_cast<int>(ErrorKind::Internal); ++kind) {
        auto name = kind_name(static_cast<ErrorKind>(kind));
        EXPECT_FALSE(name.empty());
        EXPECT_TRUE(names.insert(name).second) << name << " names two kinds";
    }
    EXPECT_EQ(names.size(), 14u);
    EXPECT_EQ(kind_name(ErrorKind::InvalidInput), "invalid_input");
    EXPECT_EQ(kind_name(ErrorKind::Internal), "internal");
}

TEST(Error, ChainsStayErrorOr)
{
    // A chained result is an ErrorOr too, so dropping it is as loud as dropping the first.
    auto prefixed = half(3).map_error([](Error const& error) { return error.with_prefix("half"); });
    static_assert(std::is_same_v<decltype(prefixed), ErrorOr<int>>);
    EXPECT_EQ(prefixed.error().to_string(), "half: odd");

    auto quartered = half(8).and_then([](int value) { return half(value); });
    static_assert(std::is_same_v<decltype(quartered), ErrorOr<int>>);
    EXPECT_EQ(quartered.value(), 2);
    EXPECT_EQ(half(2).and_then([](int value) { return half(value); }).error().to_string(), "odd");

    ErrorOr<void> failed = make_error(ErrorKind::Busy, "held");
    auto recovered = failed.or_else([](Error const& error) -> ErrorOr<void> {
        if (error.kind() == ErrorKind::Busy)
            return {};
        return tl::unexpected(error);
    });
    static_assert(std::is_same_v<decltype(recovered), ErrorOr<void>>);
    EXPECT_TRUE(recovered);
    EXPECT_EQ(half(3).value_or(-1), -1);
}
