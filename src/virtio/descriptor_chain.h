#pragma once

#include <span>
#include <vector>

#include "base/types.h"

namespace kasou::virtio {

// One request the driver made available: the head index to give back with push(), and its
// buffers as host views of guest RAM, device-readable ones first, device-writable ones after
// (virtio 1.2, 2.7.4.2). Every span was checked to lie wholly inside guest RAM, and the chain was
// bounded by the queue size, so a device can use them without further checks. The spans stay valid
// for as long as the GuestMemory they came from.
struct DescriptorChain {
    u16 head { 0 };
    std::vector<std::span<u8>> readable;
    std::vector<std::span<u8>> writable;

    u64 readable_bytes() const;
    u64 writable_bytes() const;
    // Copies up to out.size() bytes of the readable buffers, starting `offset` bytes in; returns how
    // many were copied.
    u64 read(u64 offset, std::span<u8> out) const;
    // Copies data into the writable buffers starting `offset` bytes in; returns how many fit.
    u64 write(u64 offset, std::span<u8 const> data) const;
};

} // namespace kasou::virtio
