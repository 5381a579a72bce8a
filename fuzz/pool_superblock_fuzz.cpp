// libFuzzer target: a pool superblock crafted with a valid checksum. The input is XORed onto the
// superblock of a small valid pool (mirror + linear, three volumes) after its block header, the
// block is sealed again and written to both slots of every member, and the pool is opened, checked,
// listed and read as the pool commands do. Whatever the bytes, the pool opens or is refused with an
// error; nothing crashes or allocates beyond what the disks hold.

#include <cstring>

#include "pool_fuzz.h"

using namespace kasou;
using namespace kasou::storage;

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    test::CraftedPool crafted = fuzz::base_pool();
    Superblock superblock = crafted.superblock();
    auto bytes = std::span(reinterpret_cast<u8*>(&superblock), sizeof(superblock));
    fuzz::xor_onto(bytes, sizeof(BlockHeader), std::span(data, size));
    crafted.set_superblock(superblock);
    fuzz::exercise(crafted);
    return 0;
}
