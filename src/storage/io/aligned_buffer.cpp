#include "storage/io/aligned_buffer.h"

#include <cerrno>

namespace kasou::storage {

ErrorOr<std::span<u8>> AlignedBuffer::reserve(size_t size)
{
    if (size > m_capacity) {
        size_t rounded = (size + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        auto* data = static_cast<u8*>(std::aligned_alloc(ALIGNMENT, rounded));
        if (!data)
            return make_errno_error(ENOMEM, "aligned_alloc");
        m_data.reset(data);
        m_capacity = rounded;
    }
    return std::span<u8>(m_data.get(), size);
}

} // namespace kasou::storage
