#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "container/runtime_log.h"

using namespace kasou::container;

TEST(RuntimeLog, JsonLinesAsContainerdReadsThem)
{
    char path[] = "/tmp/kasou-oci-log-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        auto log = RuntimeLog::open(path, "json");
        ASSERT_TRUE(log);
        log->info("starting");
        log->error("container \"a\" exists \"already\"");
    }
    std::ifstream in(path);
    std::string first, second;
    std::getline(in, first);
    std::getline(in, second);
    ::unlink(path);
    auto info = nlohmann::json::parse(first);
    auto error = nlohmann::json::parse(second);
    EXPECT_EQ(info["level"], "info");
    EXPECT_EQ(error["level"], "error");
    EXPECT_EQ(error["msg"], "container \"a\" exists \"already\"");
    EXPECT_TRUE(error["time"].get<std::string>().ends_with("Z"));
}

TEST(RuntimeLog, UnknownFormatIsRefused)
{
    auto log = RuntimeLog::open("", "xml");
    ASSERT_FALSE(log);
    EXPECT_EQ(log.error().to_string(), "--log-format: \"xml\" is neither text nor json");
}
