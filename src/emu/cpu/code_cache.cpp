#include "emu/cpu/code_cache.h"

namespace kasou::emu::cpu {

Block const& CodeCache::insert(u64 physical, CodeMode mode, Block block)
{
    u64 k = key(physical, mode);
    m_pages[physical >> 12].push_back(k);
    return m_blocks.insert_or_assign(k, std::move(block)).first->second;
}

void CodeCache::invalidate_page(u64 page)
{
    auto it = m_pages.find(page);
    if (it == m_pages.end())
        return;
    for (u64 k : it->second) {
        if (auto node = m_blocks.extract(k))
            m_dropped.push_back(std::move(node));
    }
    m_pages.erase(it);
    ++m_generation;
}

void CodeCache::clear()
{
    while (!m_blocks.empty())
        m_dropped.push_back(m_blocks.extract(m_blocks.begin()));
    m_pages.clear();
    ++m_generation;
}

} // namespace kasou::emu::cpu
