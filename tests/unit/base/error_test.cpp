#include <cerrno>
#include <fcntl.h>
#include <set>
#include <string_view>
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

    EXPECT_EQ(Error::from_errno(EBUSY, "flock").kind(), ErrorKind::Busy);
    EXPECT_EQ(Error::from_errno(EAGAIN, "recv").kind(), ErrorKind::Busy);
    EXPECT_EQ(Error::from_errno(ENOSYS, "mbind").kind(), ErrorKind::Unsupported);
    EXPECT_EQ(Error::from_errno(EOPNOTSUPP, "fallocate").kind(), ErrorKind::Unsupported);
    EXPECT_EQ(Error::from_errno(EACCES, "open").kind(), ErrorKind::PermissionDenied);
    EXPECT_EQ(Error::from_errno(EROFS, "write").kind(), ErrorKind::PermissionDenied);
    EXPECT_EQ(Error::from_errno(ENOSPC, "write").kind(), ErrorKind::NoSpace);
    EXPECT_EQ(Error::from_errno(ENOMEM, "mmap").kind(), ErrorKind::ResourceExhausted);
    EXPECT_EQ(Error::from_errno(EPIPE, "send").kind(), ErrorKind::Disconnected);
    EXPECT_EQ(Error::from_errno(ETIMEDOUT, "connect").kind(), ErrorKind::TimedOut);
    EXPECT_EQ(Error::from_errno(ECANCELED, "wait").kind(), ErrorKind::Interrupted);
    EXPECT_EQ(Error::from_errno(EBADF, "read").kind(), ErrorKind::Internal);
    EXPECT_EQ(Error::from_errno(EIO, "read").kind(), ErrorKind::Io);
    EXPECT_EQ(Error::from_errno(EXFULL, "read").kind(), ErrorKind::Io) << "an errno value no kind lists is an I/O failure";
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
