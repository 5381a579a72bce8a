// libFuzzer target: the volume table and mapping-tree nodes of a pool crafted with valid checksums.
// The input is a list of 4-byte patches (metadata block, 16-bit offset, XOR value) onto the
// committed metadata blocks of a small valid pool (mirror + linear, a volume with data, its
// snapshot and an empty volume); every patched block is sealed again and written to every copy,
// and the pool is opened, checked, listed and read as the pool commands do. Nothing crashes, loops
// or allocates beyond what the disks hold, whatever the patches.

#include <map>

#include "pool_fuzz.h"

using namespace kasou;
using namespace kasou::storage;

namespace {

// The committed metadata blocks of the base pool, as they are.
std::vector<test::CraftedPool::BlockWrite> const& metadata_blocks()
{
    static std::vector<test::CraftedPool::BlockWrite> const blocks = [] {
        auto const& base = fuzz::base_pool();
        std::vector<test::CraftedPool::BlockWrite> found;
        for (u64 magic : { VOLUME_TABLE_MAGIC, NODE_MAGIC }) {
            for (u64 number : MUST(base.blocks_with(magic)))
                found.push_back({ number, MUST(base.read_block(number)), magic });
        }
        return found;
    }();
    return blocks;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    auto const& targets = metadata_blocks();
    test::CraftedPool crafted = fuzz::base_pool();
    std::map<size_t, test::CraftedPool::BlockWrite> patched;
    for (size_t at = 0; at + 4 <= size; at += 4) {
        size_t target = data[at] % targets.size();
        size_t offset = sizeof(BlockHeader) + (data[at + 1] | data[at + 2] << 8) % (BLOCK_SIZE - sizeof(BlockHeader));
        auto it = patched.try_emplace(target, targets[target]).first;
        it->second.block[offset] ^= data[at + 3];
    }
    std::vector<test::CraftedPool::BlockWrite> writes;
    for (auto const& [target, write] : patched)
        writes.push_back(write);
    MUST(crafted.write_blocks(std::move(writes)));
    fuzz::exercise(crafted);
    return 0;
}
