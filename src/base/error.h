#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace kasou {

// A failure that can be reported to a user: either an errno value from a system call together with
// the static name of the call that failed ("KVM_CREATE_VM"), or a named condition with a message
// ("ELF segment 2 lies outside guest RAM"). Errors are values; nothing a guest, a file or a client
// controls ever throws.
class Error {
public:
    static Error from_errno(int code, std::string_view context) { return Error(code, std::string(context)); }
    static Error from_string(std::string message) { return Error(0, std::move(message)); }

    // The errno value, or 0 for a named condition.
    int code() const { return m_code; }
    bool is_errno() const { return m_code != 0; }
    // For errno errors, the name of the failed call; otherwise the whole message.
    std::string const& context() const { return m_context; }
    // "KVM_CREATE_VM: Permission denied (errno 13)" or the message of a named condition.
    std::string to_string() const;

    // Returns a copy whose text is prefixed with "what: ", keeping the errno value.
    Error with_prefix(std::string_view what) const;

private:
    Error(int code, std::string context)
        : m_code(code)
        , m_context(std::move(context))
    {
    }

    int m_code { 0 };
    std::string m_context;
};

template<class T>
using ErrorOr = tl::expected<T, Error>;

// Makes an ErrorOr<...> hold an error; shorter than tl::unexpected(Error::from_string(...)).
inline tl::unexpected<Error> make_error(std::string message) { return tl::unexpected(Error::from_string(std::move(message))); }
inline tl::unexpected<Error> make_errno_error(int code, std::string_view context) { return tl::unexpected(Error::from_errno(code, context)); }

} // namespace kasou
