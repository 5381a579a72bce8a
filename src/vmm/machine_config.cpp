#include "vmm/machine_config.h"

#include <fmt/format.h>

#include "base/size.h"

namespace kasou::vmm {

ErrorOr<SerialSpec> SerialSpec::parse(std::string const& text)
{
    if (text == "stdio")
        return SerialSpec { Kind::Stdio, {} };
    auto with_path = [&](std::string_view prefix, Kind kind) -> ErrorOr<SerialSpec> {
        std::string path = text.substr(prefix.size());
        if (path.empty())
            return make_error(fmt::format("--serial {}: the path is missing (e.g. {}/tmp/console)", text, prefix));
        return SerialSpec { kind, path };
    };
    if (text.starts_with("file:"))
        return with_path("file:", Kind::File);
    if (text.starts_with("unix:"))
        return with_path("unix:", Kind::Unix);
    return make_error(fmt::format("--serial {}: expected stdio, file:PATH or unix:PATH", text));
}

ErrorOr<void> MachineConfig::validate(u64 host_memory, int max_vcpus) const
{
    if (memory == 0)
        return make_error("--memory must not be zero");
    if (memory % (4 * KiB) != 0)
        return make_error(fmt::format("--memory {} is not a multiple of 4 KiB", memory));
    if (memory < MIN_MEMORY)
        return make_error(fmt::format("--memory {} is too small; at least {} is needed", format_size(memory), format_size(MIN_MEMORY)));
    if (memory > host_memory)
        return make_error(fmt::format("--memory {} is more than this host's {} of RAM", format_size(memory), format_size(host_memory)));
    if (cpus == 0)
        return make_error("--cpus must be at least 1");
    if (cpus > static_cast<u32>(max_vcpus))
        return make_error(fmt::format("--cpus {} is more than KVM allows on this host ({})", cpus, max_vcpus));
    if (smt && cpus > 1 && cpus % 2 != 0)
        return make_error(fmt::format("{} vCPUs cannot be paired as two threads per core (smt): give an even count", cpus));
    if (kernel_path.empty())
        return make_error("no kernel given (--kernel PATH)");
    return {};
}

} // namespace kasou::vmm
