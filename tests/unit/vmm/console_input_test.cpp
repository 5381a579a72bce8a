#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "base/fd.h"
#include "base/sys_file.h"
#include "base/try.h"
#include "vmm/console_input.h"

namespace kasou::vmm {
namespace {

using namespace std::chrono_literals;

bool blocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0; }

struct Pipe {
    Pipe()
    {
        int fds[2];
        MUST(sys::pipe(fds, O_CLOEXEC));
        read_end = Fd(fds[0]);
        write_end = Fd(fds[1]);
    }
    Fd read_end;
    Fd write_end;
};

// Proves that keystrokes written to a pipe reach the sink in order on the loop's thread, that the
// end of input ends reading, and that the descriptor is given back open and blocking.
TEST(ConsoleInputTest, DeliversAPipeUntilItsEnd)
{
    Pipe pipe;
    boost::asio::io_context io;
    std::string received;
    auto input = MUST(ConsoleInput::start(io, pipe.read_end.get(), [&](std::span<u8 const> bytes) { received.append(bytes.begin(), bytes.end()); }));
    MUST(sys::write_exact(pipe.write_end.get(), "ls\r", 3));
    io.run_for(200ms);
    EXPECT_EQ(received, "ls\r");
    EXPECT_FALSE(input->ended());
    MUST(sys::write_exact(pipe.write_end.get(), "exit\r", 5));
    pipe.write_end.reset();
    io.restart();
    io.run_for(2s); // returns early: once the input ended nothing is left to wait for
    EXPECT_EQ(received, "ls\rexit\r");
    EXPECT_TRUE(input->ended());
    EXPECT_TRUE(blocking(pipe.read_end.get()));
    EXPECT_GE(::fcntl(pipe.read_end.get(), F_GETFD), 0) << "still open";
}

// Proves that a regular file (which epoll cannot watch) given as input is read to its end.
TEST(ConsoleInputTest, ReadsARegularFileToItsEnd)
{
    char path[] = "/tmp/kasou-console-input-XXXXXX";
    Fd file(::mkstemp(path));
    ASSERT_TRUE(file.valid());
    ::unlink(path);
    std::string text(1000, 'k');
    MUST(sys::write_exact(file.get(), text.data(), text.size()));
    ASSERT_EQ(::lseek(file.get(), 0, SEEK_SET), 0);
    boost::asio::io_context io;
    std::string received;
    auto input = MUST(ConsoleInput::start(io, file.get(), [&](std::span<u8 const> bytes) { received.append(bytes.begin(), bytes.end()); }));
    io.run_for(2s);
    EXPECT_EQ(received, text);
    EXPECT_TRUE(input->ended());
}

// Proves that destroying the input while it waits stops it: the loop has nothing left to run and
// the descriptor is back in blocking mode, still open.
TEST(ConsoleInputTest, StopsWhenDestroyedWhileWaiting)
{
    Pipe pipe;
    boost::asio::io_context io;
    int calls = 0;
    auto input = MUST(ConsoleInput::start(io, pipe.read_end.get(), [&](std::span<u8 const>) { ++calls; }));
    io.run_for(50ms);
    input.reset();
    MUST(sys::write_exact(pipe.write_end.get(), "x", 1));
    io.restart();
    auto started = std::chrono::steady_clock::now();
    io.run_for(2s);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "nothing left to wait for";
    EXPECT_EQ(calls, 0);
    EXPECT_TRUE(blocking(pipe.read_end.get()));
}

} // namespace
} // namespace kasou::vmm
