#include "vmm/device_specs.h"

#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "storage/nbd/uri.h"
#include "virtio/vsock/vsock_device.h"

namespace kasou::vmm {

ErrorOr<DiskSpec> DiskSpec::parse(std::string const& text)
{
    DiskSpec spec;
    std::string_view rest = text;
    auto comma = rest.find(',');
    std::string_view target = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view {} : rest.substr(comma + 1);
    if (target.empty())
        return make_error(fmt::format("--disk {}: the path is missing (e.g. --disk disk.img or --disk vol:tank/root)", text));
    if (target.starts_with("vol:")) {
        auto name = target.substr(4);
        auto slash = name.find('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == name.size() || name.find('/', slash + 1) != std::string_view::npos)
            return make_error(fmt::format("--disk {}: a volume is named vol:POOL/VOL", text));
        spec.kind = Kind::Volume;
        spec.pool = name.substr(0, slash);
        spec.volume = name.substr(slash + 1);
    } else if (target.starts_with("nbd:")) {
        spec.kind = Kind::Nbd;
        spec.path = target.substr(4);
        if (auto uri = storage::nbd::NbdUri::parse(spec.path); !uri)
            return tl::unexpected(uri.error().with_prefix(fmt::format("--disk {}", text)));
    } else {
        spec.path = target;
    }
    while (!rest.empty()) {
        comma = rest.find(',');
        auto option = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view {} : rest.substr(comma + 1);
        if (option == "ro") {
            spec.read_only = true;
        } else if (option.starts_with("serial=")) {
            spec.serial = option.substr(7);
            if (spec.serial.size() > 20)
                return make_error(fmt::format("--disk {}: a serial has at most 20 characters", text));
        } else if (option.starts_with("queues=")) {
            auto number = option.substr(7);
            char* end = nullptr;
            std::string digits(number);
            unsigned long queues = std::strtoul(digits.c_str(), &end, 10);
            if (digits.empty() || *end != '\0' || queues < 1 || queues > MAX_DISK_QUEUES)
                return make_error(fmt::format("--disk {}: queues= takes a number from 1 to {}", text, MAX_DISK_QUEUES));
            spec.queues = static_cast<u16>(queues);
        } else {
            return make_error(fmt::format("--disk {}: unknown option '{}' (known: ro, serial=S, queues=N)", text, option));
        }
    }
    return spec;
}

namespace {

// Splits "key=value,key=value" into pairs; refuses items without '='.
ErrorOr<std::vector<std::pair<std::string, std::string>>> key_values(std::string_view option, std::string const& text)
{
    std::vector<std::pair<std::string, std::string>> pairs;
    std::string_view rest = text;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view {} : rest.substr(comma + 1);
        auto equals = item.find('=');
        if (equals == std::string_view::npos || equals == 0)
            return make_error(fmt::format("{} {}: '{}' is not KEY=VALUE", option, text, item));
        pairs.emplace_back(item.substr(0, equals), item.substr(equals + 1));
    }
    return pairs;
}

} // namespace

ErrorOr<NetSpec> NetSpec::parse(std::string const& text)
{
    NetSpec spec;
    auto pairs = key_values("--net", text);
    if (!pairs)
        return tl::unexpected(pairs.error());
    for (auto const& [key, value] : *pairs) {
        if (key == "tap")
            spec.tap = value;
        else if (key == "mac")
            spec.mac = value;
        else
            return make_error(fmt::format("--net {}: unknown key '{}' (known: tap, mac)", text, key));
    }
    if (spec.tap.empty())
        return make_error(fmt::format("--net {}: the tap interface is missing (e.g. --net tap=tap0)", text));
    return spec;
}

ErrorOr<VsockSpec> VsockSpec::parse(std::string const& text)
{
    VsockSpec spec;
    auto pairs = key_values("--vsock", text);
    if (!pairs)
        return tl::unexpected(pairs.error());
    for (auto const& [key, value] : *pairs) {
        if (key == "cid") {
            char* end = nullptr;
            unsigned long cid = std::strtoul(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || cid < 3 || cid > 0xFFFF'FFFEul)
                return make_error(fmt::format("--vsock {}: cid must be a number from 3 to 4294967294", text));
            spec.guest_cid = static_cast<u32>(cid);
        } else if (key == "uds") {
            spec.uds_path = value;
        } else if (key == "max_connections") {
            char* end = nullptr;
            unsigned long count = std::strtoul(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || count < 1 || count > virtio::vsock::MAX_MAX_CONNECTIONS)
                return make_error(
                    fmt::format("--vsock {}: max_connections must be a number from 1 to {}", text, virtio::vsock::MAX_MAX_CONNECTIONS));
            spec.max_connections = count;
        } else {
            return make_error(fmt::format("--vsock {}: unknown key '{}' (known: cid, uds, max_connections)", text, key));
        }
    }
    if (spec.guest_cid == 0 || spec.uds_path.empty())
        return make_error(fmt::format("--vsock {}: both cid=N and uds=PATH are needed", text));
    return spec;
}

} // namespace kasou::vmm
