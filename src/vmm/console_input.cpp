#include "vmm/console_input.h"

#include <cerrno>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "base/asio_error.h"
#include "base/sys_file.h"

namespace kasou::vmm {

namespace asio = boost::asio;
using boost::system::error_code;

// What the handlers hold: a handler that runs after the ConsoleInput is gone sees `stopped` and
// touches nothing else.
struct ConsoleInput::Reader : std::enable_shared_from_this<Reader> {
    Reader(asio::io_context& io, int fd, Sink sink)
        : io(io)
        , fd(fd)
        , descriptor(io)
        , sink(std::move(sink))
    {
    }

    void wait()
    {
        if (regular_file) {
            asio::post(io, [self = shared_from_this()] { self->read(); });
            return;
        }
        descriptor.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](error_code const& code) {
            if (self->stopped)
                return;
            if (code == asio::error::operation_not_supported) {
                self->regular_file = true; // epoll refuses regular files; they never block
                self->read();
            } else if (code) {
                self->finish();
            } else {
                self->read();
            }
        });
    }

    void read()
    {
        if (stopped)
            return;
        u8 buffer[256];
        auto n = sys::read(fd, buffer, sizeof(buffer));
        if (n && *n > 0) {
            sink(std::span<u8 const>(buffer, *n));
        } else if (!n && (n.error().code() == EAGAIN || n.error().code() == EINTR)) {
            // woken with nothing to read: wait again
        } else {
            finish(); // end of input, or an input that failed
            return;
        }
        wait();
    }

    // Stops for good and gives the descriptor back, in blocking mode.
    void finish()
    {
        if (std::exchange(stopped, true) || !descriptor.is_open())
            return;
        error_code ignored;
        descriptor.cancel(ignored);
        descriptor.native_non_blocking(false, ignored);
        (void)descriptor.release();
    }

    asio::io_context& io;
    int fd;
    asio::posix::stream_descriptor descriptor;
    Sink sink;
    bool regular_file { false };
    bool stopped { false };
};

ErrorOr<std::unique_ptr<ConsoleInput>> ConsoleInput::start(asio::io_context& io, int input_fd, Sink sink)
{
    auto reader = std::make_shared<Reader>(io, input_fd, std::move(sink));
    error_code code;
    reader->descriptor.assign(input_fd, code);
    if (code)
        return tl::unexpected(asio_error(code, "console input"));
    reader->wait();
    return std::unique_ptr<ConsoleInput>(new ConsoleInput(std::move(reader)));
}

ConsoleInput::ConsoleInput(std::shared_ptr<Reader> reader)
    : m_reader(std::move(reader))
{
}

ConsoleInput::~ConsoleInput()
{
    m_reader->finish();
}

bool ConsoleInput::ended() const
{
    return m_reader->stopped;
}

} // namespace kasou::vmm
