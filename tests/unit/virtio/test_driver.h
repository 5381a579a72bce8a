#pragma once

// The driver side of a split virtqueue, written straight into test memory, so device code can be
// driven without a guest, including with chains no well-behaved driver would make.

#include <cstring>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/split_queue.h"

namespace kasou::test {

struct TestDescriptor {
    u64 address;
    u32 length;
    u16 flags;
    u16 next;
};

constexpr u16 NEXT = 1;
constexpr u16 WRITE = 2;
constexpr u16 INDIRECT = 4;

class TestDriver {
public:
    // A queue of `size` entries with its areas at fixed addresses; data buffers from 0x100000 up.
    explicit TestDriver(memory::GuestMemory const& memory, u16 size = 16)
        : m_memory(memory)
        , m_layout { size, 0x1000, 0x1000 + 16ull * size, 0x1000 + 16ull * size + 0x1000 }
    {
    }

    virtio::QueueLayout const& layout() const { return m_layout; }

    void set_descriptor(u16 index, TestDescriptor const& descriptor, u64 table = 0)
    {
        u64 base = table ? table : m_layout.descriptor_table;
        (void)m_memory.write_object(base + 16ull * index, descriptor);
    }

    // Publishes `head` in the next available slot and bumps the available index.
    void make_available(u16 head)
    {
        u16 index = available_index();
        (void)m_memory.write_object<u16>(m_layout.available_ring + 4 + 2ull * (index % m_layout.size), head);
        set_available_index(static_cast<u16>(index + 1));
    }

    u16 available_index() const { return m_memory.read_object<u16>(m_layout.available_ring + 2).value(); }
    void set_available_index(u16 index) { (void)m_memory.write_object<u16>(m_layout.available_ring + 2, index); }
    void set_available_flags(u16 flags) { (void)m_memory.write_object<u16>(m_layout.available_ring, flags); }
    void set_used_event(u16 index) { (void)m_memory.write_object<u16>(m_layout.available_ring + 4 + 2ull * m_layout.size, index); }

    u16 used_index() const { return m_memory.read_object<u16>(m_layout.used_ring + 2).value(); }
    u16 used_flags() const { return m_memory.read_object<u16>(m_layout.used_ring).value(); }
    u16 avail_event() const { return m_memory.read_object<u16>(m_layout.used_ring + 4 + 8ull * m_layout.size).value(); }
    std::pair<u32, u32> used_element(u16 slot) const
    {
        u64 at = m_layout.used_ring + 4 + 8ull * (slot % m_layout.size);
        return { m_memory.read_object<u32>(at).value(), m_memory.read_object<u32>(at + 4).value() };
    }

    // A buffer in guest RAM holding `bytes`.
    u64 buffer(std::vector<u8> const& bytes)
    {
        u64 address = m_next_buffer;
        (void)m_memory.write(address, bytes);
        m_next_buffer += (bytes.size() + 0xFFF) & ~u64 { 0xFFF };
        if (bytes.empty())
            m_next_buffer += 0x1000;
        return address;
    }

private:
    memory::GuestMemory const& m_memory;
    virtio::QueueLayout m_layout;
    u64 m_next_buffer { 0x100000 };
};

} // namespace kasou::test
