#include "pci/msix.h"

#include <algorithm>
#include <cstring>

namespace kasou::pci {

MsixTable::MsixTable(u16 vectors, MsiSink& sink)
    : m_sink(sink)
    , m_entries(vectors)
    , m_pending(vectors, false)
{
}

void MsixTable::table_read(u64 offset, std::span<u8> data)
{
    std::lock_guard guard(m_lock);
    std::fill(data.begin(), data.end(), 0xFF);
    if (offset >= table_size() || data.size() > table_size() - offset || (data.size() != 4 && data.size() != 8) || offset % 4)
        return;
    std::memcpy(data.data(), reinterpret_cast<u8 const*>(m_entries.data()) + offset, data.size());
}

void MsixTable::table_write(u64 offset, std::span<u8 const> data)
{
    std::lock_guard guard(m_lock);
    if (offset >= table_size() || data.size() > table_size() - offset || (data.size() != 4 && data.size() != 8) || offset % 4)
        return;
    // An 8-byte write at an entry's control word reaches the next entry's address too: each
    // 4-byte word is applied to its own entry.
    for (size_t done = 0; done < data.size(); done += 4)
        write_word(offset + done, data.subspan(done, 4));
}

void MsixTable::write_word(u64 offset, std::span<u8 const> word)
{
    u16 vector = static_cast<u16>(offset / ENTRY_SIZE);
    Entry before = m_entries[vector];
    std::memcpy(reinterpret_cast<u8*>(m_entries.data()) + offset, word.data(), word.size());
    Entry& entry = m_entries[vector];
    if (entry.address_low != before.address_low || entry.address_high != before.address_high || entry.data != before.data)
        m_sink.route_changed(vector, (u64 { entry.address_high } << 32) | entry.address_low, entry.data);
    if ((before.control & 1) && !(entry.control & 1))
        deliver_pending();
}

void MsixTable::pba_read(u64 offset, std::span<u8> data)
{
    std::lock_guard guard(m_lock);
    std::fill(data.begin(), data.end(), 0);
    for (size_t byte = 0; byte < data.size(); ++byte) {
        for (u64 bit = 0; bit < 8; ++bit) {
            u64 vector = (offset + byte) * 8 + bit;
            if (vector < m_pending.size() && m_pending[vector])
                data[byte] |= static_cast<u8>(1u << bit);
        }
    }
}

void MsixTable::set_control(bool enabled, bool function_masked)
{
    std::lock_guard guard(m_lock);
    m_enabled = enabled;
    m_function_masked = function_masked;
    deliver_pending();
}

bool MsixTable::deliverable(u16 vector) const
{
    return m_enabled && !m_function_masked && !(m_entries[vector].control & 1);
}

void MsixTable::deliver_pending()
{
    for (u16 vector = 0; vector < m_entries.size(); ++vector) {
        if (m_pending[vector] && deliverable(vector)) {
            m_pending[vector] = false;
            m_sink.deliver(vector);
        }
    }
}

void MsixTable::signal(u16 vector)
{
    std::lock_guard guard(m_lock);
    if (vector >= m_entries.size())
        return;
    if (deliverable(vector))
        m_sink.deliver(vector);
    else
        m_pending[vector] = true;
}

} // namespace kasou::pci
