#include "virtio/split_queue.h"

#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "base/try.h"

namespace kasou::virtio {

namespace {

// virtio 1.2, 2.7.5: struct virtq_desc and its flags.
struct Descriptor {
    u64 address;
    u32 length;
    u16 flags;
    u16 next;
};
static_assert(sizeof(Descriptor) == 16);

constexpr u16 DESCRIPTOR_NEXT = 1;
constexpr u16 DESCRIPTOR_WRITE = 2;
constexpr u16 DESCRIPTOR_INDIRECT = 4;
constexpr u16 AVAILABLE_NO_INTERRUPT = 1; // 2.7.6: VIRTQ_AVAIL_F_NO_INTERRUPT
constexpr u16 USED_NO_NOTIFY = 1;         // 2.7.8: VIRTQ_USED_F_NO_NOTIFY
constexpr u64 RING_HEADER = 4;            // flags and idx

u64 available_ring_bytes(u16 size) { return RING_HEADER + 2ull * size + 2; } // + used_event
u64 used_ring_bytes(u16 size) { return RING_HEADER + 8ull * size + 2; }      // + avail_event

u16 load_u16(std::span<u8> area, u64 offset)
{
    return std::atomic_ref<u16>(*reinterpret_cast<u16*>(area.data() + offset)).load(std::memory_order_acquire);
}

void store_u16(std::span<u8> area, u64 offset, u16 value)
{
    std::atomic_ref<u16>(*reinterpret_cast<u16*>(area.data() + offset)).store(value, std::memory_order_release);
}

ErrorOr<std::span<u8>> ring_area(memory::GuestMemory const& memory, char const* name, u64 address, u64 length, u64 alignment)
{
    if (address % alignment != 0)
        return make_error(fmt::format("virtqueue {} at {:#x} is not aligned to {} bytes", name, address, alignment));
    return memory.span(address, length).map_error([&](Error const& error) { return error.with_prefix(fmt::format("virtqueue {}", name)); });
}

} // namespace

ErrorOr<SplitQueue> SplitQueue::create(memory::GuestMemory const& memory, QueueLayout const& layout, bool event_index)
{
    u16 size = layout.size;
    if (size == 0 || size > MAX_SIZE || (size & (size - 1)) != 0)
        return make_error(fmt::format("virtqueue size {} is not a power of two from 1 to {}", size, MAX_SIZE));
    auto descriptors = TRY(ring_area(memory, "descriptor table", layout.descriptor_table, 16ull * size, 16));
    auto available = TRY(ring_area(memory, "available ring", layout.available_ring, available_ring_bytes(size), 2));
    auto used = TRY(ring_area(memory, "used ring", layout.used_ring, used_ring_bytes(size), 4));
    return SplitQueue(memory, layout, event_index, descriptors, available, used);
}

SplitQueue::SplitQueue(memory::GuestMemory const& memory, QueueLayout layout, bool event_index, std::span<u8> descriptors,
    std::span<u8> available, std::span<u8> used)
    : m_memory(&memory)
    , m_layout(layout)
    , m_event_index(event_index)
    , m_descriptors(descriptors)
    , m_available(available)
    , m_used(used)
{
}

void SplitQueue::resume(u16 next_available)
{
    m_next_available = next_available;
    m_next_used = load_u16(m_used, 2);
    m_signalled_used = m_next_used;
}

u16 SplitQueue::available_index() const { return load_u16(m_available, 2); }
u16 SplitQueue::used_event() const { return load_u16(m_available, RING_HEADER + 2ull * m_layout.size); }

ErrorOr<void> SplitQueue::walk(u16 head, DescriptorChain& chain) const
{
    std::span<u8> table = m_descriptors;
    u32 table_entries = m_layout.size;
    bool indirect = false;
    u32 index = head;
    // A chain holds at most `size` buffers (2.7.4.1); one more step is the indirect descriptor.
    u32 steps_left = u32 { m_layout.size } + 1;
    for (;;) {
        if (index >= table_entries)
            return make_error(fmt::format("descriptor index {} is outside the {} of {} entries", index,
                indirect ? "indirect table" : "descriptor table", table_entries));
        if (steps_left-- == 0)
            return make_error(fmt::format("descriptor chain from head {} is longer than the queue size {} (a loop?)", head, m_layout.size));
        Descriptor descriptor;
        std::memcpy(&descriptor, table.data() + 16ull * index, sizeof(descriptor));

        if (descriptor.flags & DESCRIPTOR_INDIRECT) {
            if (indirect)
                return make_error("indirect descriptor inside an indirect table");
            if (descriptor.flags & DESCRIPTOR_NEXT)
                return make_error("indirect descriptor also has the NEXT flag");
            if (descriptor.length == 0 || descriptor.length % 16 != 0 || descriptor.length / 16 > MAX_SIZE)
                return make_error(fmt::format("indirect table length {} is not a multiple of 16 from 16 to {}", descriptor.length, 16 * MAX_SIZE));
            table = TRY(m_memory->span(descriptor.address, descriptor.length).map_error([](Error const& e) { return e.with_prefix("indirect table"); }));
            table_entries = descriptor.length / 16;
            indirect = true;
            index = 0;
            continue;
        }

        if (descriptor.length > 0) {
            auto buffer = TRY(m_memory->span(descriptor.address, descriptor.length).map_error([&](Error const& e) {
                return e.with_prefix(fmt::format("descriptor {} buffer", index));
            }));
            if (descriptor.flags & DESCRIPTOR_WRITE) {
                chain.writable.push_back(buffer);
            } else {
                if (!chain.writable.empty())
                    return make_error(fmt::format("descriptor {}: a device-readable buffer follows a device-writable one", index));
                chain.readable.push_back(buffer);
            }
        }
        if (!(descriptor.flags & DESCRIPTOR_NEXT))
            return {};
        index = descriptor.next;
    }
}

ErrorOr<std::optional<DescriptorChain>> SplitQueue::pop()
{
    u16 pending = static_cast<u16>(available_index() - m_next_available);
    if (pending == 0)
        return std::optional<DescriptorChain> {};
    if (pending > m_layout.size)
        return make_error(fmt::format("driver made {} buffers available in a queue of size {}", pending, m_layout.size));
    u16 slot = m_next_available % m_layout.size;
    u16 head = load_u16(m_available, RING_HEADER + 2ull * slot);
    DescriptorChain chain;
    chain.head = head;
    TRY(walk(head, chain));
    ++m_next_available;
    return std::optional<DescriptorChain>(std::move(chain));
}

ErrorOr<void> SplitQueue::push(u16 head, u32 written)
{
    UsedElement element { head, written };
    return push_many({ &element, 1 });
}

ErrorOr<void> SplitQueue::push_many(std::span<UsedElement const> elements)
{
    for (auto const& element : elements) {
        if (element.head >= m_layout.size)
            return make_error(fmt::format("used element {} is outside the queue of size {}", element.head, m_layout.size));
    }
    for (auto const& element : elements) {
        u64 offset = RING_HEADER + 8ull * (m_next_used % m_layout.size);
        u32 id = element.head;
        std::memcpy(m_used.data() + offset, &id, 4);
        std::memcpy(m_used.data() + offset + 4, &element.written, 4);
        ++m_next_used;
    }
    store_u16(m_used, 2, m_next_used);
    return {};
}

bool SplitQueue::should_interrupt()
{
    if (m_next_used == m_signalled_used)
        return false;
    // The used index must be visible before the driver's event index is read (2.7.10).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool wanted;
    if (m_event_index) {
        u16 event = used_event();
        wanted = static_cast<u16>(m_next_used - event - 1) < static_cast<u16>(m_next_used - m_signalled_used);
    } else {
        wanted = !(load_u16(m_available, 0) & AVAILABLE_NO_INTERRUPT);
    }
    m_signalled_used = m_next_used;
    return wanted;
}

void SplitQueue::request_notification()
{
    if (m_event_index)
        store_u16(m_used, RING_HEADER + 8ull * m_layout.size, m_next_available);
    else
        store_u16(m_used, 0, 0);
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

void SplitQueue::suppress_notifications()
{
    // With EVENT_IDX the avail_event last written already lies behind what the driver adds next.
    if (!m_event_index)
        store_u16(m_used, 0, USED_NO_NOTIFY);
}

} // namespace kasou::virtio
