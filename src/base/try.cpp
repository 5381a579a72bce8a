#include "base/try.h"

namespace kasou::detail {

void must_failed(char const* expression, Error const& error, char const* file, int line)
{
    std::fprintf(stderr, "kasou: internal error at %s:%d: MUST(%s) failed: %s\n", file, line, expression,
        error.to_string().c_str());
    std::abort();
}

} // namespace kasou::detail
