#include <gtest/gtest.h>

#include "virtio/descriptor_chain.h"

using namespace kasou;

TEST(DescriptorChain, CopiesAcrossBufferBoundaries)
{
    std::vector<u8> a = { 1, 2, 3 }, b = { 4, 5 }, c(4, 0), d(2, 0);
    virtio::DescriptorChain chain;
    chain.readable = { std::span(a), std::span(b) };
    chain.writable = { std::span(c), std::span(d) };
    u8 out[4] = {};
    EXPECT_EQ(chain.read(2, out), 3u) << "only three bytes remain after offset 2";
    EXPECT_EQ(out[0], 3);
    EXPECT_EQ(out[2], 5);
    u8 const in[6] = { 9, 9, 9, 9, 7, 7 };
    EXPECT_EQ(chain.write(1, in), 5u) << "only five bytes fit after offset 1";
    EXPECT_EQ(c[0], 0);
    EXPECT_EQ(c[3], 9);
    EXPECT_EQ(d[0], 9);
    EXPECT_EQ(d[1], 7);
    EXPECT_EQ(chain.read(10, out), 0u);
}
