// A hostile config.json against the OCI configuration parser: any byte string must come back as a
// Config or one error, never a crash, an exception or a hang.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "container/config.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    std::string_view text(reinterpret_cast<char const*>(data), size);
    (void)kasou::container::parse_config(text);
    (void)kasou::container::parse_process(text);
    (void)kasou::container::parse_resources(text);
    return 0;
}
