#pragma once

// What the pool fuzz targets share: the crafted pool they mutate, made once, and the work `kasou
// pool import`, `pool check`, `pool status`, `vol ls` and `nbd serve` do on a pool they open.

#include <algorithm>
#include <span>

#include <spdlog/spdlog.h>

#include "crafted_pool.h"

namespace kasou::storage::fuzz {

inline test::CraftedPool const& base_pool()
{
    static test::CraftedPool const pool = [] {
        spdlog::set_level(spdlog::level::off);
        return MUST(test::CraftedPool::make());
    }();
    return pool;
}

// XORs input onto bytes from offset on (zero input bytes leave the base as it was).
inline void xor_onto(std::span<u8> bytes, size_t offset, std::span<u8 const> input)
{
    for (size_t i = 0; i < input.size() && offset + i < bytes.size(); ++i)
        bytes[offset + i] ^= input[i];
}

// Opens the pool, checks it, lists it, reads every volume's first and last block, and closes it.
inline void exercise(test::CraftedPool const& crafted)
{
    auto pool = crafted.open();
    if (!pool)
        return;
    (void)(*pool)->check();
    (void)(*pool)->usage();
    for (auto const& info : (*pool)->volumes()) {
        auto volume = (*pool)->open_volume(info.name);
        if (!volume)
            continue;
        std::vector<u8> buffer(4096);
        (void)(*volume)->read(0, buffer);
        u64 size = (*volume)->size();
        if (size >= buffer.size())
            (void)(*volume)->read(size - buffer.size(), buffer);
        (void)(*volume)->block_status(0, size);
    }
    (void)(*pool)->close();
}

} // namespace kasou::storage::fuzz
