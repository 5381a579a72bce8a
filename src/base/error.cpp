#include "base/error.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kasou {

std::string_view kind_name(ErrorKind kind)
{
    switch (kind) {
    case ErrorKind::InvalidInput: return "invalid_input";
    case ErrorKind::NotFound: return "not_found";
    case ErrorKind::AlreadyExists: return "already_exists";
    case ErrorKind::Busy: return "busy";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::PermissionDenied: return "permission_denied";
    case ErrorKind::NoSpace: return "no_space";
    case ErrorKind::ResourceExhausted: return "resource_exhausted";
    case ErrorKind::Corrupt: return "corrupt";
    case ErrorKind::Io: return "io";
    case ErrorKind::Disconnected: return "disconnected";
    case ErrorKind::TimedOut: return "timed_out";
    case ErrorKind::Interrupted: return "interrupted";
    case ErrorKind::Internal: return "internal";
    }
    return "internal";
}

ErrorKind kind_of_errno(int code)
{
    switch (code) {
    case EINVAL: case E2BIG: case EDOM: case ERANGE: case EOVERFLOW: case ENAMETOOLONG: case EILSEQ:
    case ENOTDIR: case EISDIR: case ELOOP: case EMSGSIZE: case EXDEV: case ENOTBLK: case ENOEXEC:
    case EDESTADDRREQ: case EADDRNOTAVAIL:
        return ErrorKind::InvalidInput;
    case ENOENT: case ENXIO: case ENODEV: case ESRCH: case ECHILD: case ENOMEDIUM:
        return ErrorKind::NotFound;
    case EEXIST: case EISCONN: case EALREADY:
        return ErrorKind::AlreadyExists;
    case EBUSY: case EAGAIN: case ETXTBSY: case EADDRINUSE: case EINPROGRESS: case EDEADLK: case ENOTEMPTY:
        return ErrorKind::Busy;
    case ENOSYS: case EOPNOTSUPP: case ENOTTY: case EAFNOSUPPORT: case EPROTONOSUPPORT: case ESOCKTNOSUPPORT:
    case EPFNOSUPPORT: case ENOPROTOOPT: case EPROTOTYPE:
        return ErrorKind::Unsupported;
    case EACCES: case EPERM: case EROFS:
        return ErrorKind::PermissionDenied;
    case ENOSPC: case EDQUOT: case EFBIG:
        return ErrorKind::NoSpace;
    case ENOMEM: case EMFILE: case ENFILE: case ENOBUFS: case EMLINK: case EUSERS:
        return ErrorKind::ResourceExhausted;
    case EBADMSG: case EUCLEAN:
        return ErrorKind::Corrupt;
    case EPIPE: case ECONNRESET: case ECONNREFUSED: case ECONNABORTED: case ENOTCONN: case ESHUTDOWN:
    case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case ENETRESET:
        return ErrorKind::Disconnected;
    case ETIMEDOUT: case ETIME:
        return ErrorKind::TimedOut;
    case EINTR: case ECANCELED:
        return ErrorKind::Interrupted;
    case EBADF: case EFAULT: case ENOTSOCK:
        return ErrorKind::Internal;
    default:
        return ErrorKind::Io;
    }
}

std::string Error::to_string() const
{
    if (m_code == 0)
        return m_context;
    return fmt::format("{}: {} (errno {})", m_context, std::strerror(m_code), m_code);
}

Error Error::with_prefix(std::string_view what) const
{
    return Error(m_code, m_kind, fmt::format("{}: {}", what, m_context));
}

} // namespace kasou
