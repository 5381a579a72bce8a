#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <tl/expected.hpp>

namespace kasou {

// What went wrong, in the terms a caller acts on: an API maps a kind to a status code (see
// kind_name() for the stable token) and code that handles one failure tests the kind, never the
// text. Kept small on purpose; a new kind needs a caller that treats it differently.
enum class ErrorKind {
    InvalidInput, // the request or the data given is malformed, out of range or inconsistent (EINVAL)
    NotFound, // a named object (file, pool, volume, core group, process) does not exist (ENOENT)
    AlreadyExists, // the object to create exists already (EEXIST)
    Busy, // the object is held by someone else or not ready now: locked, in use, full queue (EBUSY, EAGAIN)
    Unsupported, // well-formed, but needs what the host kernel, the hardware or kasou lacks (ENOSYS, EOPNOTSUPP)
    PermissionDenied, // not allowed: privileges, a read-only file system or a read-only snapshot (EACCES, EPERM, EROFS)
    NoSpace, // a disk, a file system or a pool is full (ENOSPC, EDQUOT)
    ResourceExhausted, // memory, descriptors, cores or another finite resource ran out (ENOMEM, EMFILE)
    Corrupt, // data kasou keeps (pool metadata, the registry) fails its checks (EBADMSG, EUCLEAN)
    Io, // the device, the file or the host failed the operation; the default for an unlisted errno (EIO)
    Disconnected, // the peer hung up or the object was closed under the caller (EPIPE, ECONNRESET, ESHUTDOWN)
    TimedOut, // a deadline passed (ETIMEDOUT)
    Interrupted, // the operation was cancelled or interrupted before it completed (ECANCELED, EINTR)
    Internal, // a bug in kasou: an invariant broke or an API was misused (EBADF, EFAULT)
};

// A stable snake_case token for the kind ("invalid_input", "not_found", ...), for logs and APIs.
std::string_view kind_name(ErrorKind kind);
// The kind an errno value means; an errno value not listed under a kind is Io.
ErrorKind kind_of_errno(int code);

// A failure that can be reported to a user: either an errno value from a system call together with
// the static name of the call that failed ("KVM_CREATE_VM"), or a named condition with a message
// ("ELF segment 2 lies outside guest RAM"). Each carries a kind: an errno error the kind of its
// errno value, a named condition the kind it was made with (InvalidInput unless said otherwise).
// Errors are values; nothing a guest, a file or a client controls ever throws.
class Error {
public:
    static Error from_errno(int code, std::string_view context) { return Error(code, kind_of_errno(code), std::string(context)); }
    static Error from_string(std::string message, ErrorKind kind = ErrorKind::InvalidInput) { return Error(0, kind, std::move(message)); }

    ErrorKind kind() const { return m_kind; }
    // The errno value, or 0 for a named condition.
    int code() const { return m_code; }
    bool is_errno() const { return m_code != 0; }
    // For errno errors, the name of the failed call; otherwise the whole message.
    std::string const& context() const { return m_context; }
    // "KVM_CREATE_VM: Permission denied (errno 13)" or the message of a named condition.
    std::string to_string() const;

    // Returns a copy whose text is prefixed with "what: ", keeping the errno value and the kind.
    Error with_prefix(std::string_view what) const;

private:
    Error(int code, ErrorKind kind, std::string context)
        : m_code(code)
        , m_kind(kind)
        , m_context(std::move(context))
    {
    }

    int m_code { 0 };
    ErrorKind m_kind { ErrorKind::InvalidInput };
    std::string m_context;
};

template<class T>
class ErrorOr;

namespace detail {

// Calls f with the value of result (moved from an rvalue result), or with nothing for ErrorOr<void>.
template<class Result, class F>
decltype(auto) invoke_with_value(Result&& result, F&& f)
{
    if constexpr (std::is_void_v<typename std::remove_cvref_t<Result>::value_type>)
        return std::invoke(std::forward<F>(f));
    else
        return std::invoke(std::forward<F>(f), *std::forward<Result>(result));
}

} // namespace detail

// The value of an operation that can fail: a T, or the Error saying why there is none. A
// tl::expected that cannot be dropped unnoticed ([[nodiscard]]): a caller propagates it (TRY),
// asserts it (MUST), handles it, or discards it with a cast to void and a comment saying why.
// and_then / or_else / map_error keep results ErrorOr, so a chain cannot be dropped either.
template<class T>
class [[nodiscard]] ErrorOr : public tl::expected<T, Error> {
    using Base = tl::expected<T, Error>;

public:
    using Base::Base;
    ErrorOr() = default;
    ErrorOr(Base const& base)
        : Base(base)
    {
    }
    ErrorOr(Base&& base)
        : Base(std::move(base))
    {
    }

    // f(value) -> ErrorOr<U> (f() for ErrorOr<void>), called only when there is a value.
    template<class F>
    auto and_then(F&& f) const& { return and_then_impl(*this, std::forward<F>(f)); }
    template<class F>
    auto and_then(F&& f) && { return and_then_impl(std::move(*this), std::forward<F>(f)); }
    // f(error) -> ErrorOr<T>, called only when there is an error: a recovery.
    template<class F>
    ErrorOr or_else(F&& f) const& { return *this ? *this : ErrorOr(std::invoke(std::forward<F>(f), this->error())); }
    template<class F>
    ErrorOr or_else(F&& f) && { return *this ? std::move(*this) : ErrorOr(std::invoke(std::forward<F>(f), std::move(this->error()))); }
    // f(error) -> Error: rewrites an error (with_prefix, say) and passes a value through.
    template<class F>
    ErrorOr map_error(F&& f) const& { return Base::map_error(std::forward<F>(f)); }
    template<class F>
    ErrorOr map_error(F&& f) && { return static_cast<Base&&>(*this).map_error(std::forward<F>(f)); }

private:
    template<class Self, class F>
    static auto and_then_impl(Self&& self, F&& f)
    {
        using Result = std::remove_cvref_t<decltype(detail::invoke_with_value(std::forward<Self>(self), std::forward<F>(f)))>;
        using Next = ErrorOr<typename Result::value_type>;
        if (!self)
            return Next(tl::unexpect, std::forward<Self>(self).error());
        return Next(detail::invoke_with_value(std::forward<Self>(self), std::forward<F>(f)));
    }
};

// Makes an ErrorOr<...> hold an error; shorter than tl::unexpected(Error::from_string(...)). Without
// a kind the error is InvalidInput, the common case of a message naming what is wrong with an input.
inline tl::unexpected<Error> make_error(std::string message) { return tl::unexpected(Error::from_string(std::move(message))); }
inline tl::unexpected<Error> make_error(ErrorKind kind, std::string message) { return tl::unexpected(Error::from_string(std::move(message), kind)); }
inline tl::unexpected<Error> make_errno_error(int code, std::string_view context) { return tl::unexpected(Error::from_errno(code, context)); }

} // namespace kasou
