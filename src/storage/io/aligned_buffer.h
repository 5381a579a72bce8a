#pragma once

#include <cstdlib>
#include <memory>
#include <span>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage {

// A heap buffer aligned to 4096 bytes, as O_DIRECT transfers need. Grows on demand (the contents
// are not kept when it does); move-only.
class AlignedBuffer {
public:
    static constexpr size_t ALIGNMENT = 4096;

    // Makes sure at least `size` bytes are available; returns them.
    ErrorOr<std::span<u8>> reserve(size_t size);
    std::span<u8> span(size_t size) const { return { m_data.get(), size }; }
    size_t capacity() const { return m_capacity; }

private:
    struct Free {
        void operator()(u8* p) const { std::free(p); }
    };
    std::unique_ptr<u8, Free> m_data;
    size_t m_capacity { 0 };
};

} // namespace kasou::storage
