#include <gtest/gtest.h>

#include "vmm/device_specs.h"

using namespace kasou::vmm;

TEST(DiskSpec, ParsesFilesAndVolumes)
{
    auto file = DiskSpec::parse("/images/root.img,ro,serial=disk0").value();
    EXPECT_EQ(file.kind, DiskSpec::Kind::RawFile);
    EXPECT_EQ(file.path, "/images/root.img");
    EXPECT_TRUE(file.read_only);
    EXPECT_EQ(file.serial, "disk0");
    auto volume = DiskSpec::parse("vol:tank/root").value();
    EXPECT_EQ(volume.kind, DiskSpec::Kind::Volume);
    EXPECT_EQ(volume.pool, "tank");
    EXPECT_EQ(volume.volume, "root");
    EXPECT_FALSE(volume.read_only);
    EXPECT_EQ(volume.queues, 1) << "one request queue unless asked";
    EXPECT_EQ(DiskSpec::parse("vol:tank/root,queues=4").value().queues, 4);
    EXPECT_EQ(DiskSpec::parse("disk.img,queues=16,ro").value().queues, 16);
}

TEST(DiskSpec, ParsesNbdUris)
{
    auto tcp = DiskSpec::parse("nbd:nbd://10.0.0.2:10900/root,ro,queues=2").value();
    EXPECT_EQ(tcp.kind, DiskSpec::Kind::Nbd);
    EXPECT_EQ(tcp.path, "nbd://10.0.0.2:10900/root");
    EXPECT_TRUE(tcp.read_only);
    EXPECT_EQ(tcp.queues, 2);
    EXPECT_EQ(DiskSpec::parse("nbd:nbd+unix:///root?socket=/run/n.sock").value().path, "nbd+unix:///root?socket=/run/n.sock");
    auto tls = DiskSpec::parse("nbd:nbds://host/root");
    ASSERT_FALSE(tls);
    EXPECT_NE(tls.error().to_string().find("TLS"), std::string::npos) << tls.error().to_string();
    EXPECT_FALSE(DiskSpec::parse("nbd:"));
}

TEST(DiskSpec, RefusesMalformedSpecs)
{
    for (char const* bad : { "", ",ro", "vol:tank", "vol:/root", "vol:tank/", "vol:a/b/c", "disk.img,rw", "disk.img,serial=123456789012345678901",
             "disk.img,queues=0", "disk.img,queues=17", "disk.img,queues=", "disk.img,queues=2x", "disk.img,queues=-1" }) {
        auto result = DiskSpec::parse(bad);
        EXPECT_FALSE(result) << bad;
    }
    EXPECT_NE(DiskSpec::parse("disk.img,fast").error().to_string().find("unknown option 'fast'"), std::string::npos);
}

TEST(VsockSpec, ParsesTheConnectionLimit)
{
    auto spec = VsockSpec::parse("cid=3,uds=/run/v.sock,max_connections=16").value();
    EXPECT_EQ(spec.max_connections, 16u);
    EXPECT_EQ(VsockSpec::parse("cid=3,uds=/run/v.sock").value().max_connections, 0u) << "0: the device's default";
    for (char const* bad : { "cid=3,uds=v,max_connections=0", "cid=3,uds=v,max_connections=65537", "cid=3,uds=v,max_connections=x" }) {
        auto result = VsockSpec::parse(bad);
        ASSERT_FALSE(result) << bad;
        EXPECT_NE(result.error().to_string().find("max_connections must be a number from 1 to 65536"), std::string::npos);
    }
}
