#pragma once

#include <span>
#include <utility>

#include "base/error.h"
#include "base/types.h"

namespace kasou {

// An mmap'd range, unmapped when destroyed. Move-only; size() is fixed at creation.
class Mapping {
public:
    // Anonymous private memory (MAP_NORESERVE: pages are only committed when touched).
    static ErrorOr<Mapping> anonymous(u64 size);
    // A shared mapping of fd from offset; prot is PROT_READ and/or PROT_WRITE.
    static ErrorOr<Mapping> of_fd(int fd, u64 size, int prot, u64 offset = 0);
    // A private, writable, copy-on-write mapping of fd from offset: pages are read from the file
    // when first touched, and writes never reach it.
    static ErrorOr<Mapping> copy_on_write(int fd, u64 size, u64 offset);

    Mapping() = default;
    ~Mapping();
    Mapping(Mapping&& other) noexcept
        : m_data(std::exchange(other.m_data, nullptr))
        , m_size(std::exchange(other.m_size, 0))
    {
    }
    Mapping& operator=(Mapping&& other) noexcept;
    Mapping(Mapping const&) = delete;
    Mapping& operator=(Mapping const&) = delete;

    u8* data() const { return m_data; }
    u64 size() const { return m_size; }
    std::span<u8> bytes() const { return { m_data, m_size }; }

private:
    Mapping(u8* data, u64 size)
        : m_data(data)
        , m_size(size)
    {
    }

    u8* m_data { nullptr };
    u64 m_size { 0 };
};

} // namespace kasou
