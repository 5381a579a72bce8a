#include "base/asio_error.h"

#include <fmt/format.h>

namespace kasou {

Error asio_error(boost::system::error_code const& code, std::string_view context)
{
    auto const& category = code.category();
    if (code.value() != 0 && (category == boost::system::system_category() || category == boost::system::generic_category()))
        return Error::from_errno(code.value(), context);
    return Error::from_string(fmt::format("{}: {}", context, code.message()));
}

} // namespace kasou
