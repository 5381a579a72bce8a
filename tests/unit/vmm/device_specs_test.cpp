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

TEST(DiskSpec, RefusesMalformedSpecs)
{
    for (char const* bad : { "", ",ro", "vol:tank", "vol:/root", "vol:tank/", "vol:a/b/c", "disk.img,rw", "disk.img,serial=123456789012345678901",
             "disk.img,queues=0", "disk.img,queues=17", "disk.img,queues=", "disk.img,queues=2x", "disk.img,queues=-1" }) {
        auto result = DiskSpec::parse(bad);
        EXPECT_FALSE(result) << bad;
    }
    EXPECT_NE(DiskSpec::parse("disk.img,fast").error().to_string().find("unknown option 'fast'"), std::string::npos);
}
