#pragma once

#include <string_view>

#include <boost/system/error_code.hpp>

#include "base/error.h"

namespace kasou {

// The Error for a failed Boost.Asio operation (kasou calls only the error_code overloads, so nothing
// a peer does throws): an operating-system code keeps its errno value under `context`; Asio's own
// conditions (end of stream, a full buffer, …) become a named condition carrying Asio's message.
Error asio_error(boost::system::error_code const& code, std::string_view context);

} // namespace kasou
