#pragma once

#include <mutex>
#include <span>
#include <vector>

#include "base/types.h"

namespace kasou::pci {

// Where MSI-X messages go once the VMM has routed them (in kasou: KVM GSI routes fed by irqfds).
class MsiSink {
public:
    virtual ~MsiSink() = default;
    // The driver wrote a new address/data pair for `vector`.
    virtual void route_changed(u16 vector, u64 address, u32 data) = 0;
    // Deliver `vector`'s message now.
    virtual void deliver(u16 vector) = 0;
};

// An MSI-X table and pending-bit array (PCI 3.0, 6.8.2) for one function: the driver programs
// entries through a BAR; the device raises vectors with signal(). A vector that is masked (by its
// own mask bit or the function mask), or raised while MSI-X is disabled, is remembered in the PBA
// and delivered when unmasked. Thread-safe: the driver's accesses come from vCPU threads, signals
// from device threads. Lock order: this table's lock, then the sink.
class MsixTable {
public:
    static constexpr u8 CAPABILITY_ID = 0x11;
    static constexpr u64 ENTRY_SIZE = 16;
    static constexpr u16 NO_VECTOR = 0xFFFF;

    MsixTable(u16 vectors, MsiSink& sink);

    u16 vectors() const { return static_cast<u16>(m_entries.size()); }
    u64 table_size() const { return m_entries.size() * ENTRY_SIZE; }
    u64 pba_size() const { return ((m_entries.size() + 63) / 64) * 8; }

    void table_read(u64 offset, std::span<u8> data);
    void table_write(u64 offset, std::span<u8 const> data);
    void pba_read(u64 offset, std::span<u8> data);

    // The capability's message control word changed (enable and function-mask bits).
    void set_control(bool enabled, bool function_masked);
    // Raises `vector`; NO_VECTOR and out-of-range vectors are ignored.
    void signal(u16 vector);

private:
    struct Entry {
        u32 address_low { 0 };
        u32 address_high { 0 };
        u32 data { 0 };
        u32 control { 1 }; // bit 0: masked; every vector starts masked
    };
    // Applies one aligned 4-byte word of the table (m_lock held).
    void write_word(u64 offset, std::span<u8 const> word);
    bool deliverable(u16 vector) const;
    void deliver_pending();

    std::mutex m_lock;
    MsiSink& m_sink;
    std::vector<Entry> m_entries;
    std::vector<bool> m_pending;
    bool m_enabled { false };
    bool m_function_masked { false };
};

} // namespace kasou::pci
