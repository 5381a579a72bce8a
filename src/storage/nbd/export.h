#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "storage/block_device.h"

namespace kasou::storage::nbd {

// A named BlockDevice offered to NBD clients. All connections to one export share the device.
struct Export {
    std::string name;
    std::shared_ptr<BlockDevice> device;
};

// The export called `name`; the empty name (NBD's default export) is the first one. Null if none.
inline Export const* find_export(std::span<Export const> exports, std::string_view name)
{
    if (name.empty())
        return exports.empty() ? nullptr : &exports.front();
    for (auto const& candidate : exports) {
        if (candidate.name == name)
            return &candidate;
    }
    return nullptr;
}

} // namespace kasou::storage::nbd
