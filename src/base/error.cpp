#include "base/error.h"

#include <cstring>

#include <fmt/format.h>

namespace kasou {

std::string Error::to_string() const
{
    if (m_code == 0)
        return m_context;
    return fmt::format("{}: {} (errno {})", m_context, std::strerror(m_code), m_code);
}

Error Error::with_prefix(std::string_view what) const
{
    return Error(m_code, fmt::format("{}: {}", what, m_context));
}

} // namespace kasou
