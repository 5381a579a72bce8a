// libFuzzer target: a member label crafted with a valid checksum. The input is XORed onto the label
// of the first member of a small valid pool after its block header and the label is sealed again;
// then the label is read, the disk is checked for reuse (as `pool create` does) and the pool is
// opened, checked and read as the pool commands do. Nothing crashes whatever the bytes.

#include "pool_fuzz.h"

using namespace kasou;
using namespace kasou::storage;

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    test::CraftedPool crafted = fuzz::base_pool();
    MemberLabel label = crafted.label(0);
    auto bytes = std::span(reinterpret_cast<u8*>(&label), sizeof(label));
    fuzz::xor_onto(bytes, sizeof(BlockHeader), std::span(data, size));
    crafted.set_label(0, label);
    auto disks = crafted.disks();
    (void)read_member_label(*disks[0]);
    (void)check_disk_unused(*disks[0], false);
    fuzz::exercise(crafted);
    return 0;
}
