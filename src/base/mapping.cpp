#include "base/mapping.h"

#include <sys/mman.h>

#include "base/sys_memory.h"
#include "base/try.h"

namespace kasou {

ErrorOr<Mapping> Mapping::anonymous(u64 size)
{
    void* data = TRY(sys::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    return Mapping(static_cast<u8*>(data), size);
}

ErrorOr<Mapping> Mapping::of_fd(int fd, u64 size, int prot, u64 offset)
{
    void* data = TRY(sys::mmap(nullptr, size, prot, MAP_SHARED, fd, static_cast<off_t>(offset)));
    return Mapping(static_cast<u8*>(data), size);
}

ErrorOr<Mapping> Mapping::copy_on_write(int fd, u64 size, u64 offset)
{
    void* data = TRY(sys::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, static_cast<off_t>(offset)));
    return Mapping(static_cast<u8*>(data), size);
}

Mapping::~Mapping()
{
    if (m_data)
        ::munmap(m_data, m_size);
}

Mapping& Mapping::operator=(Mapping&& other) noexcept
{
    if (this != &other) {
        if (m_data)
            ::munmap(m_data, m_size);
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
    }
    return *this;
}

} // namespace kasou
