#pragma once

#include <optional>
#include <span>

#include "base/error.h"
#include "base/types.h"
#include "memory/guest_memory.h"
#include "virtio/descriptor_chain.h"

namespace kasou::virtio {

// Where the driver put a split virtqueue's three areas (virtio 1.2, 2.7), and its size.
struct QueueLayout {
    u16 size { 0 };
    u64 descriptor_table { 0 };
    u64 available_ring { 0 };
    u64 used_ring { 0 };
};

// The device side of one split virtqueue in guest memory (virtio 1.2, 2.7), with indirect
// descriptors (2.7.5.3) and VIRTIO_F_EVENT_IDX notification suppression (2.7.7, 2.7.10).
//
// Everything the driver controls is distrusted: create() checks that each area lies in RAM with
// its required alignment; pop() checks every index, address and length, bounds a chain by the
// queue size (which also catches loops), refuses an indirect descriptor inside an indirect table
// or alongside other descriptors' NEXT, and a device-readable buffer after a device-writable one.
// Any violation is returned as an error, after which the owner puts its device in NEEDS_RESET; the
// queue itself is left unchanged by a failed pop.
//
// One thread uses a queue at a time (the device's I/O thread); the driver runs concurrently in the
// guest, so ring indexes are read with acquire and written with release ordering.
class SplitQueue {
public:
    static constexpr u16 MAX_SIZE = 32768;

    static ErrorOr<SplitQueue> create(memory::GuestMemory const& memory, QueueLayout const& layout, bool event_index);

    u16 size() const { return m_layout.size; }
    // Continues a queue that was served before (by this device earlier, or by another back-end):
    // pop() starts at the driver's available index `next_available`, and push() after the used
    // index the ring holds now. Every chain taken before must have been returned.
    void resume(u16 next_available);

    // The next chain the driver made available, nullopt when there is none.
    ErrorOr<std::optional<DescriptorChain>> pop();
    // Whether the driver has made a chain available that pop() has not returned yet.
    bool has_available() const { return available_index() != m_next_available; }
    // How many chains pop() has returned (modulo 2^16): whether serving the queue took any.
    u16 popped() const { return m_next_available; }
    // The driver's available index: how many chains it has made available (modulo 2^16).
    u16 available_index() const;
    // Returns a chain to the driver, with the number of bytes written into its writable buffers.
    ErrorOr<void> push(u16 head, u32 written);
    // Returns several chains with one used-index update, so the driver sees all of them or none (a
    // frame spread over mergeable receive buffers, 5.1.6.4). Nothing is returned if one head is bad.
    struct UsedElement {
        u16 head;
        u32 written;
    };
    ErrorOr<void> push_many(std::span<UsedElement const> elements);
    // Whether the driver asked to be interrupted for the buffers pushed since the last call that
    // returned true (used_event with EVENT_IDX, else the NO_INTERRUPT flag).
    bool should_interrupt();
    // Asks the driver to notify when it adds the next buffer: avail_event with EVENT_IDX, else by
    // clearing VIRTQ_USED_F_NO_NOTIFY. Followed by a full fence, so that a look at the available
    // index after it cannot miss a buffer the driver added without notifying.
    void request_notification();
    // Tells the driver that notifications are not needed for now (the device polls): without
    // EVENT_IDX, VIRTQ_USED_F_NO_NOTIFY; with it, leaving avail_event behind does the same.
    void suppress_notifications();

private:
    SplitQueue(memory::GuestMemory const& memory, QueueLayout layout, bool event_index, std::span<u8> descriptors,
        std::span<u8> available, std::span<u8> used);

    ErrorOr<void> walk(u16 head, DescriptorChain& chain) const;
    u16 used_event() const;

    memory::GuestMemory const* m_memory;
    QueueLayout m_layout;
    bool m_event_index;
    std::span<u8> m_descriptors;
    std::span<u8> m_available;
    std::span<u8> m_used;
    u16 m_next_available { 0 };
    u16 m_next_used { 0 };
    u16 m_signalled_used { 0 };
};

} // namespace kasou::virtio
